"""AES-256-GCM: the encrypting codec, with key ids for rotation.

A payload is laid out as

    version (1 byte) | key id length (1) | key id (ASCII) | nonce (12) | ciphertext + tag (16)

The associated data is the header (version and key id) followed by the
context the engine passes (workflow id, run, position, kind), so a payload
copied anywhere else, or relabelled with another key id, fails to
authenticate. Overhead: 30 bytes plus the key id.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import CodecError

__all__ = ["AESGCMCodec", "generate_key", "key_from_text", "key_to_text"]

_VERSION = 1
_NONCE = 12
_TAG = 16
_KEY_SIZE = 32
_MAX_KEY_ID = 32
_urandom = os.urandom
_WHAT = ("wrong key, tampered or truncated payload, or a payload moved from another "
         "workflow, run, position or kind")


def generate_key() -> bytes:
    """32 random bytes: a fresh AES-256 key."""
    return os.urandom(_KEY_SIZE)


def key_to_text(key: bytes) -> str:
    """URL-safe base64 text for a key, for environment variables and the CLI."""
    return base64.urlsafe_b64encode(bytes(key)).decode("ascii")


def key_from_text(text: str, key_id: str = "?") -> bytes:
    """A 32-byte key from 64 hex digits or (URL-safe or standard) base64.

    The error never echoes the text: it is a secret.
    """
    text = text.strip()
    raw: bytes | None = None
    if len(text) == 2 * _KEY_SIZE:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != _KEY_SIZE:
        raise ValueError(
            f"key {key_id!r} is not 32 bytes written as 64 hex digits or as base64 "
            "(generate one with AESGCMCodec.generate_key() and key_to_text())"
        )
    return raw


def _check_key_id(key_id: object) -> bytes:
    if not isinstance(key_id, str):
        raise TypeError(f"AESGCMCodec key ids are str, got {type(key_id).__name__}")
    raw = key_id.encode("ascii", "replace")
    if not (0 < len(raw) <= _MAX_KEY_ID and key_id.isascii() and key_id.isprintable() and " " not in key_id):
        raise ValueError(
            f"AESGCMCodec key id {key_id!r} must be 1 to {_MAX_KEY_ID} printable ASCII "
            "characters without spaces (it is written in clear into every payload header)"
        )
    return raw


def _check_key(key_id: str, key: object) -> bytes:
    if isinstance(key, str):
        raise TypeError(
            f"AESGCMCodec key {key_id!r} is a str; pass the 32 raw bytes, or build the codec "
            "with AESGCMCodec.from_text(...) to read hex or base64"
        )
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError(f"AESGCMCodec key {key_id!r} must be bytes, got {type(key).__name__}")
    raw = bytes(key)
    if len(raw) != _KEY_SIZE:
        raise ValueError(
            f"AESGCMCodec key {key_id!r} is {len(raw)} bytes; AES-256 needs exactly {_KEY_SIZE} "
            "(generate one with AESGCMCodec.generate_key())"
        )
    return raw


class AESGCMCodec:
    """AES-256-GCM with random 96-bit nonces and the context as associated data.

    `keys` maps short ASCII key ids to 32-byte keys; `active` (default: the
    first key) encrypts, and every key decrypts, so old payloads stay
    readable while you rotate. Random nonces are safe for about 2**32
    payloads per key: rotate well before that.
    """

    id = "a"
    uses_context = True
    secret = True

    __slots__ = ("active", "_ciphers", "_by_raw_id", "_prefix", "_encrypt")

    generate_key = staticmethod(generate_key)

    def __init__(self, keys: Mapping[str, bytes], active: str | None = None) -> None:
        if not isinstance(keys, Mapping) or not keys:
            raise ValueError("AESGCMCodec needs keys={key id: 32-byte key, ...} with at least one key")
        # One AESGCM object per key: building it costs about 1 µs per payload otherwise.
        self._ciphers: dict[str, AESGCM] = {}
        self._by_raw_id: dict[bytes, tuple[str, Callable[[bytes, bytes, bytes], bytes]]] = {}
        for key_id, key in keys.items():
            raw_id = _check_key_id(key_id)
            cipher = AESGCM(_check_key(key_id, key))
            self._ciphers[key_id] = cipher
            self._by_raw_id[raw_id] = (key_id, cipher.decrypt)
        if active is None:
            active = next(iter(keys))
        if active not in self._ciphers:
            raise ValueError(
                f"AESGCMCodec(active={active!r}) names no configured key; the keys are "
                f"{', '.join(map(repr, self._ciphers))}"
            )
        self.active = active
        raw_active = active.encode("ascii")
        self._prefix = bytes([_VERSION, len(raw_active)]) + raw_active
        self._encrypt = self._ciphers[active].encrypt

    @classmethod
    def from_text(cls, keys: Mapping[str, str] | str, active: str | None = None) -> AESGCMCodec:
        """Keys written as text: `{"k2": "<base64 or hex>", ...}` or `"k2=<key>,k1=<key>"`.

        In the string form the first key is active unless `active` says otherwise.
        """
        if isinstance(keys, str):
            pairs: dict[str, str] = {}
            for part in filter(None, (p.strip() for p in keys.split(","))):
                key_id, sep, text = part.partition("=")
                if not sep or not key_id.strip():
                    raise ValueError("AESGCMCodec.from_text expects 'key id=key' pairs separated by commas")
                pairs[key_id.strip()] = text
            keys = pairs
        return cls({k: key_from_text(v, k) for k, v in keys.items()}, active)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    def encode(self, data: bytes, context: bytes = b"") -> bytes:
        prefix = self._prefix
        nonce = _urandom(_NONCE)  # never a counter or a pool: forks and threads must not share one
        return prefix + nonce + self._encrypt(nonce, data, prefix + context)

    def decode(self, data: bytes, context: bytes = b"") -> bytes:
        if data.__class__ is not bytes:
            data = bytes(data)  # a store may hand back a memoryview or bytearray: key ids must hash
        try:
            end = 2 + data[1]
            found = self._by_raw_id.get(data[2:end]) if data[0] == _VERSION else None
        except IndexError:
            found = None
        if found is None:
            raise self._unreadable(data)
        key_id, decrypt = found
        body = end + _NONCE
        try:
            return decrypt(data[end:body], data[body:], data[:end] + context)
        except (InvalidTag, ValueError, OverflowError):
            pass
        if len(data) < body + _TAG:
            why = f"it is truncated ({len(data)} bytes, at least {body + _TAG} needed)"
        else:
            why = _WHAT
        # Raised outside the except block, so no InvalidTag rides along as __context__.
        raise CodecError(f"AESGCMCodec could not authenticate a payload under key {key_id!r}: {why}", key_id=key_id)

    def is_current(self, data: bytes) -> bool:
        """True if `data` was encrypted under the active key (re-encoding skips it)."""
        return data.startswith(self._prefix)

    def _unreadable(self, data: bytes) -> CodecError:
        """Why the header names no configured key: damaged, truncated, or a key we lack."""
        if len(data) < 2:
            return CodecError(
                f"AESGCMCodec cannot read the key id: the payload is truncated ({len(data)} of "
                "at least 2 header bytes)"
            )
        if data[0] != _VERSION:
            return CodecError(
                f"AESGCMCodec cannot read the key id: unknown format version {data[0]} (this "
                f"version of durable writes {_VERSION}); the payload is damaged or from a newer durable"
            )
        raw_id = data[2 : 2 + data[1]]
        try:
            key_id = raw_id.decode("ascii")
        except UnicodeDecodeError:
            key_id = ""
        if len(raw_id) != data[1] or not key_id or not key_id.isprintable() or " " in key_id:
            return CodecError("AESGCMCodec cannot read the key id: the payload header is damaged or truncated")
        return CodecError(
            f"AESGCMCodec has no key {key_id!r} to decrypt this payload (configured: "
            f"{', '.join(map(repr, self._ciphers))}); pass it in AESGCMCodec(keys=...) — after "
            "a rotation, keep old keys until every payload is re-encrypted",
            key_id=key_id,
        )

    def __repr__(self) -> str:
        # Key ids only: never the keys.
        return f"AESGCMCodec(keys=[{', '.join(map(repr, self._ciphers))}], active={self.active!r})"
