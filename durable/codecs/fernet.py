"""Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) as a codec, with key ids.

Fernet has no associated data, so this codec binds the context itself: the
plaintext it encrypts is a 16-byte BLAKE2b digest of the context followed by
the data, and decoding checks that digest after Fernet has authenticated the
token. A payload moved to another workflow, run, position or kind therefore
fails, as with AESGCMCodec.

A payload is laid out as

    version (1 byte) | key id length (1) | key id (ASCII) | Fernet token, raw (not base64)

Rotation works like MultiFernet (the active key encrypts, every key
decrypts), but the header names the key, so decoding tries one key instead
of each in turn, and errors can say which key failed. Note that a Fernet
token carries its creation time in clear: the store can read when each
payload was encrypted. Prefer AESGCMCodec unless you need Fernet keys.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken

from ..errors import CodecError

__all__ = ["FernetCodec"]

_VERSION = 1
_BOUND = 16  # bytes of context digest inside the plaintext
_MIN_TOKEN = 1 + 8 + 16 + 16 + 32  # version, timestamp, IV, one AES block, HMAC
_PERSON = b"durable-fernet"
_WHAT = ("wrong key, tampered or truncated payload, or a payload moved from another "
         "workflow, run, position or kind")

KeyLike = bytes | str


def _fingerprint(key: bytes) -> str:
    # Stable across rotations (unlike a list index); 32 bits of a hash reveal nothing of a 256-bit key.
    return hashlib.blake2b(key, digest_size=4, person=b"durable-kid").hexdigest()


def _fernet(key_id: str, key: KeyLike) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        raise ValueError(
            f"FernetCodec key {key_id!r} is not a Fernet key (32 bytes in URL-safe base64, "
            "as FernetCodec.generate_key() returns)"
        ) from None


def _check_key_id(key_id: object) -> bytes:
    if not (isinstance(key_id, str) and 0 < len(key_id) <= 32 and key_id.isascii()
            and key_id.isprintable() and " " not in key_id):
        raise ValueError(
            f"FernetCodec key id {key_id!r} must be 1 to 32 printable ASCII characters without "
            "spaces (it is written in clear into every payload header)"
        )
    return key_id.encode("ascii")


class FernetCodec:
    """Fernet encryption with several keys for rotation; binds the context itself.

    `keys` is either a list of Fernet keys (the first encrypts; key ids are
    short fingerprints of the keys) or a mapping of key ids to keys with
    `active` naming the one that encrypts (default: the first).
    """

    id = "f"
    uses_context = True
    secret = True

    __slots__ = ("active", "_fernets", "_by_raw_id", "_prefix", "_fernet")

    def __init__(self, keys: Sequence[KeyLike] | Mapping[str, KeyLike], active: str | None = None) -> None:
        if isinstance(keys, (str, bytes)) or not keys:
            raise ValueError("FernetCodec needs a non-empty list of keys, or a mapping of key ids to keys")
        if isinstance(keys, Mapping):
            named = dict(keys)
        else:
            if active is not None:
                raise ValueError("FernetCodec(active=...) needs keys as a mapping; with a list the first key is active")
            named = {}
            for index, key in enumerate(keys):
                _fernet(f"#{index + 1}", key)  # a clear error before decoding it ourselves
                named[_fingerprint(base64.urlsafe_b64decode(key))] = key
        self._fernets: dict[str, Fernet] = {}
        self._by_raw_id: dict[bytes, tuple[str, Fernet]] = {}
        for key_id, key in named.items():
            raw_id = _check_key_id(key_id)
            fernet = _fernet(key_id, key)
            self._fernets[key_id] = fernet
            self._by_raw_id[raw_id] = (key_id, fernet)
        if active is None:
            active = next(iter(named))
        if active not in self._fernets:
            raise ValueError(
                f"FernetCodec(active={active!r}) names no configured key; the keys are "
                f"{', '.join(map(repr, self._fernets))}"
            )
        self.active = active
        self._prefix = bytes([_VERSION, len(active)]) + active.encode("ascii")
        self._fernet = self._fernets[active]

    @staticmethod
    def generate_key() -> bytes:
        """A fresh Fernet key (URL-safe base64 text, as bytes)."""
        return Fernet.generate_key()

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._fernets)

    def encode(self, data: bytes, context: bytes = b"") -> bytes:
        bound = hashlib.blake2b(context, digest_size=_BOUND, person=_PERSON).digest()
        token = self._fernet.encrypt(bound + data)
        return self._prefix + base64.urlsafe_b64decode(token)

    def is_current(self, data: bytes) -> bool:
        """True if `data` was encrypted under the active key (re-encoding skips it)."""
        return data.startswith(self._prefix)

    def decode(self, data: bytes, context: bytes = b"") -> bytes:
        if data.__class__ is not bytes:
            data = bytes(data)  # a store may hand back a memoryview or bytearray: key ids must hash
        if len(data) < 2 or data[0] != _VERSION:
            why = "truncated" if len(data) < 2 else f"unknown format version {data[0]}"
            raise CodecError(f"FernetCodec cannot read the key id: the payload header is {why}")
        end = 2 + data[1]
        found = self._by_raw_id.get(data[2:end])
        if found is None:
            raise self._unknown(data[2:end], end - 2)
        key_id, fernet = found
        if len(data) < end + _MIN_TOKEN:
            raise CodecError(
                f"FernetCodec cannot decrypt a payload under key {key_id!r}: it is truncated",
                key_id=key_id,
            )
        try:
            plain = fernet.decrypt(base64.urlsafe_b64encode(data[end:]))
        except (InvalidToken, ValueError, TypeError):
            raise CodecError(
                f"FernetCodec could not authenticate a payload under key {key_id!r}: {_WHAT}",
                key_id=key_id,
            ) from None
        bound = hashlib.blake2b(context, digest_size=_BOUND, person=_PERSON).digest()
        if plain[:_BOUND] != bound:
            raise CodecError(
                f"FernetCodec decrypted a payload under key {key_id!r}, but it belongs to another "
                "workflow, run, position or kind (moved or copied in the store)",
                key_id=key_id,
            )
        return plain[_BOUND:]

    def _unknown(self, raw_id: bytes, expected: int) -> CodecError:
        try:
            key_id = raw_id.decode("ascii")
        except UnicodeDecodeError:
            key_id = ""
        if len(raw_id) != expected or not key_id or not key_id.isprintable() or " " in key_id:
            return CodecError("FernetCodec cannot read the key id: the payload header is damaged or truncated")
        return CodecError(
            f"FernetCodec has no key {key_id!r} to decrypt this payload (configured: "
            f"{', '.join(map(repr, self._fernets))}); pass it in FernetCodec(keys=...) — after a "
            "rotation, keep old keys until every payload is re-encrypted",
            key_id=key_id,
        )

    def __repr__(self) -> str:
        return f"FernetCodec(keys=[{', '.join(map(repr, self._fernets))}], active={self.active!r})"
