"""Serializers — DESIGN.md 'Codecs (durable.codecs)': type-faithful JSON, refusal, engine use."""

from __future__ import annotations

import dataclasses
import enum
import math
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

import durable
from durable import activity, call
from durable.codecs import JsonSerializer, PickleSerializer

from .conftest import memory_engine


@dataclasses.dataclass
class Point:
    x: int
    y: object


@dataclasses.dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


@dataclasses.dataclass
class Order:
    id: UUID
    lines: list
    total: Money
    placed: datetime
    tags: set


class Color(enum.Enum):
    RED = 1


class Opaque:
    pass


def same(a, b) -> bool:
    """Equal, with the same types all the way down (and the same UTC offset for datetimes)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        for (ka, va), (kb, vb) in zip(sorted(a.items(), key=_k), sorted(b.items(), key=_k)):
            if not (same(ka, kb) and same(va, vb)):
                return False
        return True
    if isinstance(a, (set, frozenset)):
        return a == b and sorted(map(_k, a)) == sorted(map(_k, b))
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset() and (a.tzinfo is None) == (b.tzinfo is None)
    return a == b


def _k(item):
    return repr((type(item).__name__, item))


# ---------------------------------------------------------------- explicit examples

EXAMPLES = {
    "none": None,
    "bool": True,
    "int": 1,
    "float": 1.0,
    "negative zero": -0.0,
    "str": "héllo\x00",
    "list": [1, "a", None],
    "dict": {"a": 1, "b": [2]},
    "tuple": (1, 2),
    "empty tuple": (),
    "nested tuple": [(1, (2, 3)), {"t": ()}],
    "tuple vs list": ([1], (1,)),
    "huge int": 2**200,
    "huge negative int": -(2**100) - 7,
    "int64 edges": [2**63 - 1, -(2**63), 2**63, 2**64, -(2**63) - 1],
    "bool is not int": [True, 1, False, 0],
    "aware datetime": datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
    "offset datetime": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "naive datetime": datetime(2024, 1, 2, 3, 4, 5),
    "uuid": UUID("12345678-1234-5678-1234-567812345678"),
    "bytes": b"\x00\xff\x80",
    "empty bytes": b"",
    "decimal": Decimal("12.50"),
    "decimal big": Decimal("123456789012345678901234567890.000000001"),
    "set": {1, 2, 3},
    "empty set": set(),
    "set of tuples": {(1, "a"), (2, "b")},
    "dataclass": Point(1, (2, 3)),
    "frozen dataclass": Money(Decimal("9.99"), "EUR"),
    "nested dataclass": Order(
        id=UUID(int=7),
        lines=[Point(1, 2), (b"x", None)],
        total=Money(Decimal("1"), "USD"),
        placed=datetime(2030, 1, 1, tzinfo=timezone.utc),
        tags={"a", "b"},
    ),
    # values that look like the serializer's own tagging must stay plain data
    "tag-like dict": {"~": ["T", [1, 2]]},
    "tag-like dict 2": {"~": ["i", "123"]},
    "tag-like dict 3": {"~": ["b", "YWI="], "other": 1},
    "tilde string": "~{\"~\":[\"T\",[1]]}",
    "dunder keys": {"__class__": "x", "__dataclass__": "y", "$type": "z", "__tuple__": [1]},
}


@pytest.mark.parametrize("label", list(EXAMPLES))
def test_json_serializer_round_trips_listed_types_faithfully(label) -> None:
    value = EXAMPLES[label]
    ser = JsonSerializer()
    data = ser.encode(value)
    assert isinstance(data, bytes)
    back = ser.decode(data)
    assert same(back, value), (value, back)


@pytest.mark.parametrize(
    "value",
    [object(), Opaque(), lambda: 1, print, iter([1]), {"k": Opaque()}, [1, (2, Opaque())]],
    ids=["object", "instance", "lambda", "builtin", "iterator", "nested in dict", "nested in tuple"],
)
def test_json_serializer_refuses_other_values_with_serializationerror(value) -> None:
    with pytest.raises(durable.SerializationError):
        JsonSerializer().encode(value)


@pytest.mark.parametrize(
    "value",
    [
        float("inf"),
        float("-inf"),
        "\ud800",
        ["\ud800"],
        {"k": "\udfff"},
        ("\ud800",),
        frozenset({1, 2}),
        {1: "int key"},
        {(1, 2): "tuple key"},
        {None: 1},
        timedelta(seconds=5),
        date(2024, 1, 2),
        time(3, 4),
        complex(1, 2),
        bytearray(b"ab"),
        Color.RED,
        range(3),
        Decimal("Infinity"),
    ],
    ids=lambda v: type(v).__name__ + ":" + repr(v)[:20],
)
def test_json_serializer_either_round_trips_or_refuses(value) -> None:
    ser = JsonSerializer()
    try:
        data = ser.encode(value)
    except durable.SerializationError:
        return
    assert same(ser.decode(data), value), value


# ---------------------------------------------------------------- properties

hashables = st.recursive(
    st.one_of(st.integers(), st.text(max_size=8), st.binary(max_size=8), st.uuids(), st.booleans(), st.none()),
    lambda inner: st.lists(inner, max_size=3).map(tuple),
    max_leaves=6,
)

offsets = st.one_of(
    st.none(),
    st.just(timezone.utc),
    st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)

listed_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.binary(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(), offsets),
)


def _containers(children):
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
        st.sets(hashables, max_size=4),
        st.builds(Point, x=st.integers(), y=children),
    )


listed_values = st.recursive(listed_scalars, _containers, max_leaves=20)

other_scalars = st.one_of(
    st.floats(),
    st.frozensets(st.integers(), max_size=3),
    st.dictionaries(st.integers(), st.integers(), max_size=3),
    st.timedeltas(),
    st.dates(),
    st.times(),
    st.complex_numbers(allow_nan=False),
    st.just(Color.RED),
    st.decimals(allow_nan=False),
)

any_values = st.recursive(st.one_of(listed_scalars, other_scalars), _containers, max_leaves=20)


@given(listed_values)
def test_property_listed_types_round_trip_with_the_same_types(value) -> None:
    ser = JsonSerializer()
    back = ser.decode(ser.encode(value))
    assert same(back, value)


@given(any_values)
def test_property_anything_either_round_trips_faithfully_or_is_refused(value) -> None:
    ser = JsonSerializer()
    try:
        data = ser.encode(value)
    except durable.SerializationError:
        return
    assert same(ser.decode(data), value)


@given(st.dictionaries(st.text(alphabet="~_$Tbisd\"[]{}", max_size=4), st.integers(), max_size=3))
def test_property_dicts_with_tag_like_keys_stay_dicts(value) -> None:
    ser = JsonSerializer()
    assert same(ser.decode(ser.encode(value)), value)


def test_pickle_serializer_round_trips_what_json_refuses() -> None:
    ser = PickleSerializer()
    value = {"f": frozenset({1}), "c": complex(1, 2), "t": (1, [2])}
    assert same(ser.decode(ser.encode(value)), value)
    fn = ser.decode(ser.encode(lambda x: x + 1))
    assert fn(1) == 2


# ---------------------------------------------------------------- in the engine

reg = durable.Registry()
RETURNED: list = []


@activity(name="ser.make")
def make():
    value = [Point(1, (2, 3)), {"when": datetime(2024, 1, 1, tzinfo=timezone.utc)}]
    RETURNED.append(value)
    return value


@reg.workflow(name="ser.first-run-decoded")
def wf_first_run_decoded():
    got = yield call(make)
    return [got, got is RETURNED[-1], type(got[0]).__name__, type(got[0].y).__name__]


async def test_first_run_hands_the_generator_the_decoded_value() -> None:
    RETURNED.clear()
    async with memory_engine(reg) as engine:
        got, same_object, t0, t1 = await (await engine.start(wf_first_run_decoded, id="ser-1")).result(timeout=2)
    assert same(got, RETURNED[-1])
    assert same_object is False
    assert (t0, t1) == ("Point", "tuple")


@reg.workflow(name="ser.echo-arg")
def wf_echo_arg(value):
    yield durable.uuid()
    return value


@pytest.mark.parametrize("label", ["tuple", "huge int", "nested dataclass", "set", "decimal", "tag-like dict"])
async def test_workflow_arguments_and_results_keep_their_types(label) -> None:
    value = EXAMPLES[label]
    async with memory_engine(reg) as engine:
        got = await (await engine.start(wf_echo_arg, value, id=f"ser-arg-{label}")).result(timeout=2)
    assert same(got, value)


def test_same_helper_is_strict() -> None:
    assert not same((1,), [1])
    assert not same(1, True)
    assert not same(1.0, 1)
    assert not same(datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert not same(-0.0, 0.0)
    assert same(math.inf, math.inf)
