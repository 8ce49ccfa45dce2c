"""Serializers — DESIGN.md 'Codecs (durable.codecs)': type-faithful JSON, refusal, engine use."""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
import types
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

import durable
from durable import activity, call
from durable.codecs import JsonSerializer, PickleSerializer

from .conftest import memory_engine, wait_status


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
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # items may hold ints of any size
    try:
        return repr((type(item).__name__, item))
    finally:
        sys.set_int_max_str_digits(limit)


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
    "int over 4300 digits": 10**5000,
    "negative int of 20001 digits": -(10**20000),
    "ints either side of 4300 digits": [10**4300 - 1, 10**4300, -(10**4300) + 1, -(10**4300)],
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
    # around and beyond CPython's 4,300-digit limit on int <-> str conversion
    st.builds(lambda sign, digits, low: sign * (10**digits + low), st.sampled_from([1, -1]),
              st.integers(min_value=4290, max_value=4400), st.integers(min_value=-(2**64), max_value=2**64)),
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


def test_big_int_encodings_are_fixed() -> None:
    ser = JsonSerializer()
    # up to 4,300 digits: decimal, as durable always wrote them (digests depend on these bytes)
    assert ser.encode(2**64) == b'~{"~":["i","18446744073709551616"]}'
    assert ser.encode(-(10**4300) + 1) == b'~{"~":["i","-' + b"9" * 4300 + b'"]}'
    # beyond: hexadecimal, which has no digit limit
    assert ser.encode(10**4300) == b'~{"~":["x","' + format(10**4300, "x").encode() + b'"]}'
    assert ser.encode(-(16**5000)) == b'~{"~":["x","-1' + b"0" * 5000 + b'"]}'


def test_big_ints_do_not_depend_on_this_processes_digit_limit() -> None:
    ser = JsonSerializer()
    written = {v: ser.encode(v) for v in (10**1000, -(10**4299), 10**5000)}
    limit = sys.get_int_max_str_digits()
    try:
        sys.set_int_max_str_digits(0)
        # a decimal payload over the default limit, as a process that raised the limit wrote it
        long_decimal = b'~{"~":["i","' + str(10**5000 + 3).encode() + b'"]}'
        sys.set_int_max_str_digits(640)
        assert {v: ser.encode(v) for v in written} == written
        assert all(ser.decode(data) == v for v, data in written.items())
        assert ser.decode(long_decimal) == 10**5000 + 3
    finally:
        sys.set_int_max_str_digits(limit)


class Tier(enum.Enum):
    GOLD = "S3CR3T-gold-pin-9911"
    SILVER = "silver"


@pytest.fixture
def tiers(monkeypatch):
    """A module `tiers_under_test` whose Tier enum the test can replace, as a code change would."""
    module = types.ModuleType("tiers_under_test")
    monkeypatch.setitem(sys.modules, "tiers_under_test", module)

    def define(*members: str) -> type:
        cls = enum.Enum("Tier", {name: Tier[name].value for name in members}, module="tiers_under_test")
        module.Tier = cls
        return cls

    return define


def test_a_value_that_no_longer_rebuilds_is_not_quoted_in_the_error(tiers) -> None:
    ser = JsonSerializer()
    data = ser.encode(tiers("GOLD", "SILVER").GOLD)
    tiers("SILVER")  # the member was removed
    with pytest.raises(durable.SerializationError) as info:
        ser.decode(data)
    message = str(info.value)
    assert "S3CR3T" not in message
    assert "enum tiers_under_test.Tier" in message and "ValueError" in message
    assert info.value.type_name == "tiers_under_test.Tier"
    assert "S3CR3T" in str(info.value.__cause__)  # kept for local debugging, never stored
    # a pipeline adds where it was
    pipeline = durable.codecs.Pipeline()
    with pytest.raises(durable.SerializationError) as info:
        pipeline.load(pipeline.header + data, workflow_id="order-17", position=4)
    assert "S3CR3T" not in str(info.value) and "'order-17', position 4" in str(info.value)
    assert info.value.__cause__ is not None


def test_pickle_errors_do_not_quote_values(tiers) -> None:
    ser = PickleSerializer()
    data = ser.encode(tiers("GOLD", "SILVER").GOLD)
    tiers("SILVER")
    with pytest.raises(durable.SerializationError) as info:
        ser.decode(data)
    assert "S3CR3T" not in str(info.value) and "ValueError" in str(info.value)

    class Refuses:
        def __reduce__(self):
            raise TypeError("cannot pickle S3CR3T-gold-pin-9911")

    with pytest.raises(durable.SerializationError) as info:
        ser.encode([Refuses()])
    assert "S3CR3T" not in str(info.value) and "TypeError" in str(info.value)


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


@reg.workflow(name="ser.tiered")
def wf_tiered(tier):
    yield durable.receive("go")
    return tier


async def test_a_removed_enum_member_blocks_the_workflow_without_storing_its_value(tiers) -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_tiered, tiers("GOLD", "SILVER").GOLD, id="ser-tier")
        await wait_status(engine, "ser-tier", "waiting")
    tiers("SILVER")
    async with durable.Engine(store, registry=reg) as engine:
        await engine.signal("ser-tier", "go")
        await wait_status(engine, "ser-tier", "blocked")
        reason = (await engine.describe("ser-tier")).blocked_reason
    assert "tiers_under_test.Tier" in reason and "S3CR3T" not in reason


def test_same_helper_is_strict() -> None:
    assert not same((1,), [1])
    assert not same(1, True)
    assert not same(1.0, 1)
    assert not same(datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert not same(-0.0, 0.0)
    assert same(math.inf, math.inf)


def test_a_dataclass_class_itself_is_refused_like_any_other_unsupported_value() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Point:
        x: int

    with pytest.raises(durable.SerializationError):
        JsonSerializer().encode(Point)
