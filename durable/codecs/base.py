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

    An encrypting codec MUST set the class attribute `secret = True`. The
    engine cannot tell encryption from compression, and reads `secret` to
    decide how to record the argument digests it uses to detect
    nondeterminism, which are stored in the clear next to the payloads:

    - `secret = True` (on any codec of the chain): digests are keyed with a
      random key that is itself stored encrypted by the chain, and cover the
      workflow id, so a digest neither reveals nor confirms a guessed argument.
    - missing or False: digests are plain BLAKE2b, and arguments whose
      encoding takes 16 bytes or less (a PIN, a short card number, an amount)
      are stored as they are, unhashed. Under an encrypting codec that left
      `secret` unset, the store would show those arguments in the clear.

    `uses_context` (optional, default True): False tells the engine the codec
    ignores `context`, so it can skip building contexts.
    """

    #: A short ASCII tag recorded in each payload header (e.g. "a" for AES-GCM).
    id: str

    # `secret: bool` is deliberately not declared here: a Protocol attribute
    # would make isinstance(codec, Codec) fail for codecs that omit it.

    def encode(self, data: bytes, context: bytes = b"") -> bytes: ...

    def decode(self, data: bytes, context: bytes = b"") -> bytes: ...
