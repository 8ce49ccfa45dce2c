"""The two stages of turning values into stored bytes.

A *serializer* turns a value into bytes and back. A *codec* turns bytes into
bytes (compression, encryption) and is chained after the serializer. Both
carry a short `id` that is written into every payload's header, so a payload
says which chain wrote it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Codec", "Serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Values to bytes and back; `decode(encode(v)) == v` with the same types."""

    #: A short ASCII tag recorded in each payload header (e.g. "j" for JSON).
    id: str

    def encode(self, value: Any) -> bytes:
        """Bytes for `value`; `SerializationError` for anything it cannot rebuild faithfully."""
        ...

    def decode(self, data: bytes) -> Any:
        """The value `encode` was given."""
        ...


@runtime_checkable
class Codec(Protocol):
    """Bytes to bytes, e.g. compression or encryption.

    `context` is associated data the engine derives from where the payload
    belongs (workflow id, run, position, kind): an authenticating codec must
    refuse to decode under any other context. A decode that cannot
    authenticate raises `CodecError` naming the key id; it never returns bytes.

    Optional attributes the engine reads: `uses_context` (False lets the
    engine skip building contexts) and `secret` (True if the codec hides the
    payload from whoever holds the store, which makes argument digests keyed).
    """

    #: A short ASCII tag recorded in each payload header (e.g. "a" for AES-GCM).
    id: str

    def encode(self, data: bytes, context: bytes = b"") -> bytes: ...

    def decode(self, data: bytes, context: bytes = b"") -> bytes: ...
