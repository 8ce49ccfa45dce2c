"""Random chains of codecs through Pipeline: values round-trip with their types; other chains are refused."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

from durable import CodecError
from durable.codecs import AESGCMCodec, FernetCodec, JsonSerializer, Pipeline, ZlibCodec
from durable.codecs.pipeline import context_of

AES = AESGCMCodec({"k1": bytes(range(32))})
FERNET = FernetCodec({"f1": Fernet.generate_key()})
ZLIB = ZlibCodec(min_size=0)  # compress everything, so the compressed path is exercised
CODECS = {"z": ZLIB, "a": AES, "f": FERNET}
CTX = context_of("wf", 0, 1, "call")

chains = st.permutations(list(CODECS.values())).flatmap(
    lambda order: st.integers(0, len(order)).map(lambda n: tuple(order[:n]))
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # any size: JsonSerializer packs big ints
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | st.uuids()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.dates()
    | st.timedeltas()
    | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc))
)
hashables = st.recursive(scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
                         max_leaves=6)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=3)
        | st.sets(hashables, max_size=3)
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@settings(max_examples=150, deadline=None)
@given(chain=chains, value=values)
def test_values_round_trip_through_any_chain(chain: tuple, value: Any) -> None:
    pipeline = Pipeline(JsonSerializer(), chain)
    payload = pipeline.dump(value, CTX)
    assert same(pipeline.load(payload, CTX), value)


@settings(max_examples=100, deadline=None)
@given(chain=chains, data=st.binary(max_size=3000))
def test_bytes_round_trip_through_any_chain(chain: tuple, data: bytes) -> None:
    pipeline = Pipeline(JsonSerializer(), chain)
    assert pipeline.open(pipeline.seal(data, CTX), CTX) == data


@settings(max_examples=80, deadline=None)
@given(chain=chains.filter(lambda c: any(getattr(x, "secret", False) for x in c)), data=st.binary(max_size=500))
def test_secret_chains_refuse_other_contexts_naming_the_key(chain: tuple, data: bytes) -> None:
    pipeline = Pipeline(JsonSerializer(), chain)
    payload = pipeline.seal(data, CTX)
    with pytest.raises(CodecError) as info:
        pipeline.open(payload, context_of("wf", 0, 2, "call"), workflow_id="wf", position=2)
    err = info.value
    assert err.key_id in ("k1", "f1")
    assert repr(err.key_id) in str(err) and "'wf'" in str(err) and err.position == 2


@settings(max_examples=80, deadline=None)
@given(written=chains, read=chains, value=values)
def test_another_chain_is_refused_naming_both(written: tuple, read: tuple, value: Any) -> None:
    if [c.id for c in written] == [c.id for c in read]:
        return
    writer, reader = Pipeline(JsonSerializer(), written), Pipeline(JsonSerializer(), read)
    with pytest.raises(CodecError) as info:
        reader.load(writer.dump(value, CTX), CTX, workflow_id="wf", position=1)
    message = str(info.value)
    assert f"chain {writer.signature} " in message
    assert f"configured with {reader.signature} " in message


def test_chain_names_read_well() -> None:
    writer = Pipeline(JsonSerializer(), [ZLIB, AES])
    reader = Pipeline(JsonSerializer(), [FERNET])
    with pytest.raises(CodecError) as info:
        reader.load(writer.dump({"card": "4111"}, CTX), CTX)
    message = str(info.value)
    assert "j+z+a (JsonSerializer, ZlibCodec, AESGCMCodec)" in message
    assert "j+f (JsonSerializer, FernetCodec)" in message
    assert "4111" not in message


def test_compress_then_encrypt_shrinks_repetitive_payloads() -> None:
    value = {"lines": ["the same order line"] * 200}
    plain = Pipeline(JsonSerializer(), [AES]).dump(value, CTX)
    packed = Pipeline(JsonSerializer(), [ZLIB, AES]).dump(value, CTX)
    assert len(packed) * 10 < len(plain)


def test_secret_codecs_make_digests_keyed() -> None:
    assert Pipeline(JsonSerializer(), [ZLIB, AES]).secret
    assert Pipeline(JsonSerializer(), [FERNET]).secret
    assert not Pipeline(JsonSerializer(), [ZLIB]).secret
    assert not Pipeline(JsonSerializer(), [ZLIB]).uses_context
    assert Pipeline(JsonSerializer(), [ZLIB, FERNET]).uses_context


def test_value_types_survive() -> None:
    # A fixed example of what the hypothesis strategy covers, readable on failure.
    value = (1, 1.0, True, None, b"\x00", {1: "a"}, {"s"}, uuid.UUID(int=7), Decimal("1.10"),
             dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc), 2**80)
    pipeline = Pipeline(JsonSerializer(), [ZLIB, AES, FERNET])
    assert same(pipeline.load(pipeline.dump(value, CTX), CTX), value)
