"""zlib compression as a codec: put it before an encrypting codec.

A payload is one flag byte (0: stored as is, 1: zlib stream) and the data.
Payloads under `min_size`, and those compression would not shrink, are
stored, so nothing grows by more than the flag byte. Decompression refuses
to produce more than `max_output` bytes, so a crafted payload (a
"decompression bomb") cannot exhaust memory.
"""

from __future__ import annotations

import zlib as _zlib

from ..errors import CodecError, SerializationError

__all__ = ["ZlibCodec"]

_STORED = 0
_DEFLATED = 1
_DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024


class ZlibCodec:
    """Compresses payloads of at least `min_size` bytes at zlib `level` (0-9, -1 = zlib's default)."""

    id = "z"
    uses_context = False
    secret = False

    __slots__ = ("level", "min_size", "max_output")

    def __init__(self, level: int = 6, min_size: int = 256, max_output: int = _DEFAULT_MAX_OUTPUT) -> None:
        if not (-1 <= level <= 9):
            raise ValueError(f"ZlibCodec(level={level!r}) must be between -1 and 9")
        if min_size < 0:
            raise ValueError(f"ZlibCodec(min_size={min_size!r}) must not be negative")
        if max_output <= 0:
            raise ValueError(f"ZlibCodec(max_output={max_output!r}) must be positive")
        self.level = level
        self.min_size = min_size
        self.max_output = max_output

    def encode(self, data: bytes, context: bytes = b"") -> bytes:
        size = len(data)
        if size > self.max_output:
            # Refuse now: a payload we could not decompress later must never be written.
            raise SerializationError(
                f"a payload of {size:,} bytes is over ZlibCodec(max_output={self.max_output:,}); "
                "nothing was written. Raise max_output along with Engine(max_payload=...)",
                size=size,
                limit=self.max_output,
            )
        if size >= self.min_size:
            packed = _zlib.compress(data, self.level)
            if len(packed) < size:
                return b"\x01" + packed
        return b"\x00" + data

    def decode(self, data: bytes, context: bytes = b"") -> bytes:
        if not data:
            raise CodecError("ZlibCodec cannot decode an empty payload: the flag byte is missing (truncated)")
        flag = data[0]
        if flag == _STORED:
            return bytes(data[1:])
        if flag != _DEFLATED:
            raise CodecError(f"ZlibCodec cannot decode a payload with flag byte {flag} (expected 0 or 1): damaged")
        inflater = _zlib.decompressobj()
        try:
            # One byte over the limit tells "too large" apart from "exactly at the limit".
            out = inflater.decompress(data[1:], self.max_output + 1)
        except _zlib.error as exc:
            raise CodecError(f"ZlibCodec cannot decompress a damaged payload ({exc})") from None
        if len(out) > self.max_output:
            raise CodecError(
                f"ZlibCodec refused a payload that decompresses to more than max_output="
                f"{self.max_output:,} bytes (a damaged or crafted payload, or raise max_output)"
            )
        if not inflater.eof:
            raise CodecError("ZlibCodec cannot decompress a payload whose zlib stream is truncated")
        if inflater.unused_data:
            raise CodecError("ZlibCodec refused a payload with bytes after the end of its zlib stream: damaged")
        return out

    def __repr__(self) -> str:
        return f"ZlibCodec(level={self.level}, min_size={self.min_size}, max_output={self.max_output})"
