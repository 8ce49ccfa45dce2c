"""Serializer + codec chain + header: what turns a value into a stored payload.

Every payload starts with a header naming the chain that wrote it (one length
byte, then the ids joined by "+": b"\\x01j" for plain JSON, b"\\x05j+z+a"
for JSON, zlib and AES-GCM). A payload written by another chain is refused
with a message naming both, never misread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from ..errors import CodecError, SerializationError
from .base import Codec, Serializer
from .json import JsonSerializer
from .pickle import PickleSerializer

__all__ = ["DEFAULT_MAX_PAYLOAD", "Pipeline"]

DEFAULT_MAX_PAYLOAD = 4 * 1024 * 1024

_KNOWN = {"j": "JsonSerializer", "p": "PickleSerializer", "z": "ZlibCodec", "a": "AESGCMCodec", "f": "FernetCodec"}

# Argument digests: one scheme byte, then 8 bytes of BLAKE2b. Scheme 0 is
# unkeyed (stores without a secret codec); scheme 1 is keyed with the
# store's digest key, which is itself kept encrypted, so a low-entropy
# argument (a card number) cannot be recovered by hashing guesses; scheme 2
# (unencrypted stores only) holds encoded arguments of 16 bytes or less as
# they are. A recorded digest is always checked under its own scheme.
PLAIN_DIGEST = b"\x00"
KEYED_DIGEST = b"\x01"
RAW_DIGEST = b"\x02"  # unencrypted stores, short arguments: the encoded arguments themselves
_RAW_UP_TO = 16
_PERSON = b"durable-args"
_PLAIN_HASHER = hashlib.blake2b(digest_size=8, person=_PERSON)
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _plain_scalars(args: tuple) -> bool:
    for arg in args:
        t = type(arg)
        if t is str or t is bool or arg is None:
            continue
        if t is int:
            if _INT_MIN <= arg <= _INT_MAX:
                continue
            return False
        if t is float:
            if arg - arg == 0.0:  # finite (NaN and infinities give NaN)
                continue
            return False
        return False
    return True


def _where(workflow_id: str | None, position: int | None) -> str:
    if workflow_id is None:
        return ""
    return f" (workflow {workflow_id!r}" + (f", position {position})" if position is not None else ")")


def describe_chain(signature: str) -> str:
    names = [_KNOWN.get(part, part) for part in signature.split("+")]
    return f"{signature} ({', '.join(names)})"


class Pipeline:
    """Turns values into payloads and back for one engine."""

    __slots__ = ("serializer", "codecs", "signature", "header", "max_payload", "uses_context", "secret",
                 "digest_key_problem",
                 "_json", "_digest_key", "_decoders", "_keyed", "_fast_at")

    def __init__(
        self,
        serializer: Serializer | None = None,
        codecs: Sequence[Codec] = (),
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        serializer = serializer if serializer is not None else JsonSerializer()
        for part in (serializer, *codecs):
            ident = getattr(part, "id", None)
            if not isinstance(ident, str) or not ident or not ident.isascii() or "+" in ident:
                raise TypeError(
                    f"{part!r} needs an `id`: a short ASCII string without '+', written into "
                    "each payload header"
                )
        for codec in codecs:
            if not (callable(getattr(codec, "encode", None)) and callable(getattr(codec, "decode", None))):
                raise TypeError(f"{codec!r} is not a codec: it needs encode(data, context) and decode(data, context)")
        self.serializer = serializer
        self.codecs = tuple(codecs)
        self.signature = "+".join([serializer.id, *(c.id for c in self.codecs)])
        raw = self.signature.encode("ascii")
        if len(raw) > 255:
            raise ValueError("codec chain ids are too long for a payload header (255 bytes at most)")
        self.header = bytes([len(raw)]) + raw
        self.max_payload = int(max_payload)
        self.uses_context = any(getattr(c, "uses_context", True) for c in self.codecs)
        self.secret = any(getattr(c, "secret", False) for c in self.codecs)
        self._json = serializer if isinstance(serializer, JsonSerializer) else JsonSerializer()
        self._digest_key: bytes | None = None
        #: Why the store's digest key could not be read, if it could not (named where a digest needs it).
        self.digest_key_problem: str | None = None
        self._keyed: Any = None
        self._decoders = tuple(reversed(self.codecs))
        # Where plain JSON starts in a payload, when nothing but JSON wrote it.
        self._fast_at = len(self.header) + 1 if not self.codecs and type(serializer) is JsonSerializer else 0

    # -- payloads ------------------------------------------------------------

    def dump(self, value: Any, context: bytes = b"", *, workflow_id: str | None = None,
             position: int | None = None) -> bytes:
        """Serialize `value`, check its size, run the codecs, prefix the header."""
        try:
            data = self.serializer.encode(value)
        except SerializationError as exc:
            raise _located(exc, workflow_id, position) from exc.__cause__
        if not self.codecs and len(data) <= self.max_payload:
            return self.header + data
        return self.seal(data, context, workflow_id=workflow_id, position=position)

    def dump_both(self, value: Any, context: bytes = b"", *, workflow_id: str | None = None,
                  position: int | None = None) -> tuple[bytes, bytes]:
        """`(payload, serialized bytes)`: the bytes let a caller rebuild the value without decrypting."""
        try:
            data = self.serializer.encode(value)
        except SerializationError as exc:
            raise _located(exc, workflow_id, position) from exc.__cause__
        return self.seal(data, context, workflow_id=workflow_id, position=position), data

    def seal(self, data: bytes, context: bytes = b"", *, workflow_id: str | None = None,
             position: int | None = None) -> bytes:
        """Run already-serialized bytes through the codecs and prefix the header."""
        if len(data) > self.max_payload:
            raise SerializationError(
                f"a value of {len(data):,} bytes is over the payload limit of {self.max_payload:,} "
                f"bytes{_where(workflow_id, position)}; nothing was written. Store large data "
                "elsewhere and record a reference, or raise Engine(max_payload=...)",
                workflow_id=workflow_id,
                position=position,
                size=len(data),
                limit=self.max_payload,
            )
        for codec in self.codecs:
            data = codec.encode(data, context)
        return self.header + data

    def load(self, payload: bytes, context: bytes = b"", *, workflow_id: str | None = None,
             position: int | None = None) -> Any:
        """The value a payload holds; `CodecError` if it cannot be authenticated or decoded."""
        fast = self._fast_at
        if fast and payload.startswith(self.header) and payload[fast - 1 : fast] == b"=":
            # Plain JSON with no codecs: one orjson call (errors take the general path).
            try:
                return orjson.loads(payload[fast:])
            except orjson.JSONDecodeError:
                pass
        data = self.open(payload, context, workflow_id=workflow_id, position=position)
        try:
            return self.serializer.decode(data)
        except SerializationError as exc:
            raise _located(exc, workflow_id, position) from exc.__cause__

    def open(self, payload: bytes, context: bytes = b"", *, workflow_id: str | None = None,
             position: int | None = None) -> bytes:
        """Check the header and undo the codecs: the serialized bytes."""
        header = self.header
        if payload[: len(header)] != header:
            raise CodecError(
                f"payload{_where(workflow_id, position)} was written by codec chain "
                f"{self._signature_of(payload)}, but this engine is configured with "
                f"{describe_chain(self.signature)}; configure the chain that wrote it (or "
                "re-encode the store with `durable reencode`)",
                workflow_id=workflow_id,
                position=position,
            )
        return self._undo(payload[len(header):], context, workflow_id, position)

    def _undo(self, data: bytes, context: bytes, workflow_id: str | None, position: int | None) -> bytes:
        for codec in self._decoders:
            try:
                data = codec.decode(data, context)
            except CodecError as exc:
                raise CodecError(
                    f"{exc}{_where(workflow_id, position)}",
                    key_id=exc.key_id,
                    workflow_id=workflow_id,
                    position=position,
                ) from None
            except Exception as exc:
                raise CodecError(
                    f"codec {codec!r} could not decode the payload{_where(workflow_id, position)}: "
                    f"{type(exc).__name__}: {exc}",
                    workflow_id=workflow_id,
                    position=position,
                ) from None
        return data

    def is_current(self, payload: bytes) -> bool:
        """True if this chain, with its active key, would write `payload` just as it is.

        The outermost codec decides when it can tell (e.g. AESGCMCodec by the
        key id in the payload); when none can, only a chain without codecs
        says yes, so re-encoding errs on the side of rewriting.
        """
        if not payload.startswith(self.header):
            return False
        if not self.codecs:
            return True
        check = getattr(self.codecs[-1], "is_current", None)
        return bool(check is not None and check(payload[len(self.header):]))

    def signature_of(self, payload: bytes) -> str | None:
        """The chain signature a payload's header names ("j+z+a"), or None if unreadable."""
        if not payload:
            return None
        raw = payload[1 : 1 + payload[0]]
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
        return text if len(raw) == payload[0] and text else None

    @staticmethod
    def _signature_of(payload: bytes) -> str:
        if not payload:
            return "(none: the payload is empty)"
        size = payload[0]
        raw = payload[1 : 1 + size]
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return "(unreadable: the header is damaged)"
        if len(raw) != size or not text:
            return "(unreadable: the header is damaged)"
        return describe_chain(text)

    # -- argument digests ------------------------------------------------------

    @property
    def digest_key(self) -> bytes | None:
        return self._digest_key

    def set_digest_key(self, key: bytes | None) -> None:
        self._digest_key = key
        # Hashers are copied per digest: cheaper than building one each time.
        self._keyed = None if key is None else hashlib.blake2b(digest_size=8, key=key, person=_PERSON)

    def digest(self, args: tuple, kwargs: dict, scheme: bytes | None = None, *,
               workflow_id: str | None = None) -> bytes:
        """Digest of call arguments, under `scheme` (a recorded digest's first byte) or the current one.

        Keyword arguments count by name, not by order. Keyed digests also
        cover `workflow_id`, so equal arguments in two workflows (the same
        card number) do not show as equal digests.
        """
        raw_allowed = scheme == RAW_DIGEST or (scheme is None and not self.secret)
        if scheme is None:
            scheme = KEYED_DIGEST if self.secret else PLAIN_DIGEST
        data = None
        if not kwargs and _plain_scalars(args):
            # The common case, with the same bytes the general path produces.
            try:
                data = b"a=" + orjson.dumps(args)
            except orjson.JSONEncodeError:
                data = None  # e.g. a lone surrogate: the general path says what is wrong
        if data is None:
            data = self._digest_input(args, kwargs)
        # A recorded digest is recomputed under its own scheme: a plain one
        # recorded before raw digests existed must still compare equal.
        if raw_allowed and len(data) <= _RAW_UP_TO:
            # Short arguments of an unencrypted store are kept as they are:
            # nothing to hash, nothing hidden that the payloads do not show.
            digest = RAW_DIGEST + data
        else:
            if scheme == KEYED_DIGEST:
                keyed = self._keyed
                if keyed is None:
                    why = f" ({self.digest_key_problem})" if self.digest_key_problem else ""
                    raise CodecError(
                        "argument digests here are keyed, and the store's digest key could not be "
                        f"read{why}; configure the key that wrote it (keep old keys configured after "
                        "a rotation)", workflow_id=workflow_id,
                    )
                hasher = keyed.copy()
                if workflow_id is not None:
                    hasher.update(workflow_id.encode("utf-8", "surrogatepass") + b"\x00")
            else:
                hasher = _PLAIN_HASHER.copy()
            hasher.update(data)
            digest = scheme + hasher.digest()
        return digest

    def _digest_input(self, args: tuple, kwargs: dict) -> bytes:
        """The bytes a digest hashes: canonical JSON when JSON takes the arguments.

        Otherwise the serializer's own bytes: PickleSerializer's with sets in
        a canonical order, a custom serializer's as they are. Such digests are
        only as stable as those bytes (a pickled object whose state depends on
        the process, e.g. on the hash seed, gives a digest that does too).
        """
        if len(kwargs) > 1:
            kwargs = dict(sorted(kwargs.items()))
        try:
            # Lists, not tuples: plain JSON skips the packing walk. The prefix
            # keeps call(f, [1], {"a": 1}) apart from call(f, 1, a=1).
            data = b"k" + self._json.encode([[*args], kwargs]) if kwargs else b"a" + self._json.encode([*args])
        except SerializationError:
            if self.serializer is self._json:
                raise
            if isinstance(self.serializer, PickleSerializer):
                data = b"p" + self.serializer.canonical((args, kwargs))
            else:
                data = b"p" + self.serializer.encode((args, kwargs))
        return data


# Codec contexts: a 0xFF byte, then the fields as UTF-8 text, each one that
# can hold any character prefixed by its length in characters ("8:order-17"),
# the run a decimal ending in ".". Joined by a separator instead, workflow 'X'
# and a signal named '0\x1f5\x1fcall' would share the context of position 5
# of workflow 'X\x1f0\x1finbox'.
_CONTEXT_MARK = b"\xff"


def context_of(workflow_id: str, run: int, position: int | str, kind: str) -> bytes:
    """Associated data binding a payload to where it belongs: no two places share one."""
    position = str(position)
    return _CONTEXT_MARK + (
        f"{len(workflow_id)}:{workflow_id}{run}.{len(position)}:{position}{len(kind)}:{kind}"
    ).encode("utf-8", "surrogatepass")


def _located(exc: SerializationError, workflow_id: str | None, position: int | None) -> SerializationError:
    if exc.workflow_id is not None or workflow_id is None:
        return exc
    return SerializationError(
        f"{exc}{_where(workflow_id, position)}",
        workflow_id=workflow_id,
        position=position,
        type_name=exc.type_name,
        size=exc.size,
        limit=exc.limit,
    )
