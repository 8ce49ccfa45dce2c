"""ZlibCodec: small payloads grow by one byte at most, bombs and damage are refused."""

from __future__ import annotations

import os
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durable import CodecError, SerializationError
from durable.codecs import ZlibCodec


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=3000) | st.text(max_size=3000).map(str.encode),
       min_size=st.integers(0, 600), level=st.integers(-1, 9))
def test_round_trip_and_never_grows_more_than_one_byte(data: bytes, min_size: int, level: int) -> None:
    c = ZlibCodec(level=level, min_size=min_size)
    packed = c.encode(data)
    assert c.decode(packed) == data
    assert len(packed) <= len(data) + 1


def test_small_payloads_are_stored() -> None:
    c = ZlibCodec(min_size=256)
    data = b"a" * 255
    assert c.encode(data) == b"\x00" + data
    assert c.encode(b"a" * 256)[:1] == b"\x01"
    assert len(c.encode(b"a" * 10_000)) < 100


def test_incompressible_payloads_are_stored() -> None:
    data = os.urandom(5000)
    assert ZlibCodec(min_size=0).encode(data) == b"\x00" + data


def test_decompression_bomb_is_refused() -> None:
    c = ZlibCodec(max_output=1 << 20)
    bomb = b"\x01" + zlib.compress(b"\x00" * (64 << 20), 9)
    assert len(bomb) < 100_000
    with pytest.raises(CodecError, match="max_output"):
        c.decode(bomb)


def test_a_bomb_is_never_inflated_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Refusing after inflating 64 MiB would already be too late: check the bound is passed down.
    asked: list[int] = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self) -> None:
            self.inner = real()

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            asked.append(max_length)
            return self.inner.decompress(data, max_length)

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    monkeypatch.setattr("durable.codecs.zlib._zlib.decompressobj", Spy)
    with pytest.raises(CodecError, match="max_output"):
        ZlibCodec(max_output=1 << 20).decode(b"\x01" + zlib.compress(b"\x00" * (8 << 20), 9))
    assert asked and all(0 < n <= (1 << 20) + 1 for n in asked)


def test_output_exactly_at_the_limit_is_fine() -> None:
    c = ZlibCodec(max_output=4096)
    data = b"x" * 4096
    assert c.decode(c.encode(data)) == data
    with pytest.raises(CodecError, match="max_output"):
        c.decode(b"\x01" + zlib.compress(b"x" * 4097))


def test_encoding_past_the_limit_refuses_to_write() -> None:
    with pytest.raises(SerializationError, match="max_output") as info:
        ZlibCodec(max_output=1000).encode(b"x" * 1001)
    assert info.value.size == 1001 and info.value.limit == 1000


def test_damage_is_refused() -> None:
    c = ZlibCodec(min_size=0)
    packed = c.encode(b"hello world " * 100)
    assert packed[:1] == b"\x01"
    with pytest.raises(CodecError, match="empty"):
        c.decode(b"")
    with pytest.raises(CodecError, match="flag byte 7"):
        c.decode(b"\x07" + packed[1:])
    for size in range(1, len(packed)):
        with pytest.raises(CodecError):
            c.decode(packed[:size])
    with pytest.raises(CodecError, match="after the end"):
        c.decode(packed + b"junk")
    damaged = bytearray(packed)
    damaged[-1] ^= 0xFF  # the adler32 checksum
    with pytest.raises(CodecError):
        c.decode(bytes(damaged))


@pytest.mark.parametrize("kwargs", [{"level": 10}, {"level": -2}, {"min_size": -1}, {"max_output": 0}])
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ZlibCodec(**kwargs)


def test_attributes() -> None:
    c = ZlibCodec()
    assert (c.id, c.uses_context, c.secret) == ("z", False, False)


def test_decodes_any_bytes_like_payload() -> None:
    c = ZlibCodec(min_size=0)
    for data in (b"tiny", b"compressible " * 50):
        packed = c.encode(data)
        assert c.decode(bytearray(packed)) == data
        assert c.decode(memoryview(packed)) == data
