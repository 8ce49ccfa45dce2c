"""The pure driver over hand-built journals: no engine, no store, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import durable
from durable import NondeterminismError, call, gather, now, race, receive, sleep, uuid, version
from durable.driver import Driver
from durable.effects import Call

reg = durable.Registry()


@durable.activity(name="charge")
def charge(order: str, cents: int) -> str:
    return f"r-{order}"


@durable.activity(name="refund")
def refund(receipt: str) -> None:
    return None


@durable.activity(name="ship")
def ship(order: str) -> str:
    return "shipped"


def digest(effect: Call, position: int, recorded: bytes | None) -> bytes:
    return repr((effect.args, sorted(effect.kwargs.items()))).encode()


def decode(entry: Any) -> tuple[bool, Any]:
    return (not entry[4], entry[5])


def entry(position: int, kind: str, name: str = "", value: Any = None, *, failed: bool = False,
          args: tuple = (), kwargs: dict | None = None) -> tuple:
    d = repr((args, sorted((kwargs or {}).items()))).encode() if kind == "call" else b""
    return (position, kind, name, d, failed, value)


def drive(gen: Any, entries: list[tuple], *, live: Any = None) -> Driver:
    driver = Driver(gen, workflow_id="wf-1", workflow="order", digest=digest, decode=decode, live=live)
    driver.feed(entries, last=True)
    driver.start()
    return driver


@reg.workflow(name="order")
def order(order_id: str, cents: int):
    receipt = yield call(charge, order_id, cents)
    try:
        yield call(ship, order_id)
    except durable.ActivityError:
        yield call(refund, receipt)  # compensation
        return "refunded"
    return "shipped"


def test_replays_recorded_results_without_running_anything() -> None:
    d = drive(order("o1", 5), [
        entry(0, "call", "charge", "r-o1", args=("o1", 5)),
        entry(1, "call", "ship", "shipped", args=("o1",)),
    ])
    assert (d.state, d.result, d.replayed) == ("done", "shipped", 2)
    assert d.take_outbox() == [] and d.pending == {}


def test_compensation_in_except_block_is_replayed() -> None:
    failure = durable.ActivityError(type="IOError", message="down", attempts=3)
    d = drive(order("o1", 5), [
        entry(0, "call", "charge", "r-o1", args=("o1", 5)),
        entry(1, "call", "ship", failure, failed=True, args=("o1",)),
        entry(2, "call", "refund", None, args=("r-o1",)),
    ])
    assert (d.state, d.result) == ("done", "refunded")


def test_compensation_reached_live_after_recorded_failure() -> None:
    failure = durable.ActivityError(type="IOError", message="down", attempts=3)
    d = drive(order("o1", 5), [
        entry(0, "call", "charge", "r-o1", args=("o1", 5)),
        entry(1, "call", "ship", failure, failed=True, args=("o1",)),
    ])
    assert d.state == "waiting"
    (leaf,) = d.pending.values()
    assert (leaf.position, leaf.effect.name, leaf.effect.args) == (2, "refund", ("r-o1",))
    d.resolve(2, entry(2, "call", "refund", None, args=("r-o1",)), True, None)
    assert (d.state, d.result) == ("done", "refunded")
    assert [e[0] for e in d.take_outbox()] == [2]


def test_changed_activity_is_nondeterminism_naming_everything() -> None:
    with pytest.raises(NondeterminismError) as info:
        drive(order("o1", 5), [
            entry(0, "call", "charge", "r-o1", args=("o1", 5)),
            entry(1, "sleep", "", None),
        ])
    err = info.value
    assert (err.workflow_id, err.workflow, err.position) == ("wf-1", "order", 1)
    assert err.recorded == "sleep()" and "call(ship)" in err.yielded
    assert err.location is not None and err.location.endswith(f"test_driver.py:{_line_of('yield call(ship')}")
    assert "durable.version()" in str(err)


def test_changed_arguments_are_nondeterminism() -> None:
    with pytest.raises(NondeterminismError, match="other arguments") as info:
        drive(order("o1", 5), [entry(0, "call", "charge", "r-o1", args=("o1", 6))])
    assert info.value.position == 0


def test_returning_while_entries_remain_is_nondeterminism() -> None:
    @reg.workflow(name="short")
    def short():
        yield call(ship, "a")
        return 1

    with pytest.raises(NondeterminismError, match="returns"):
        drive(short(), [entry(0, "call", "ship", "s", args=("a",)), entry(1, "call", "ship", "s", args=("b",))])


def test_waiting_live_while_journal_went_further_is_nondeterminism() -> None:
    # Old code: race(call, call) at 0,1 where 0 won, then more. New code: a plain call at 1.
    @reg.workflow(name="gap")
    def gap():
        yield call(ship, "a")
        yield call(ship, "b")

    with pytest.raises(NondeterminismError, match="waits"):
        drive(gap(), [entry(0, "call", "ship", "s", args=("a",)), entry(2, "call", "ship", "s", args=("c",))])


def test_nondeterminism_is_never_thrown_into_the_workflow() -> None:
    caught = []

    @reg.workflow(name="greedy")
    def greedy():
        try:
            yield call(ship, "a")
        except Exception as exc:  # must not see NondeterminismError
            caught.append(exc)
        return "swallowed"

    with pytest.raises(NondeterminismError):
        drive(greedy(), [entry(0, "sleep")])
    assert caught == []


def test_non_effect_is_type_error_at_the_yield() -> None:
    def sub():
        yield call(ship, "x")

    @reg.workflow(name="forgot_yield_from")
    def forgot():
        try:
            yield sub()
        except TypeError as exc:
            return str(exc)

    d = drive(forgot(), [])
    assert d.state == "done"
    assert "yield from" in d.result and "position 0" in d.result and "'order' (id wf-1)" in d.result


def test_gather_members_finish_in_any_order_and_replay_by_position() -> None:
    @reg.workflow(name="fan")
    def fan():
        return (yield gather(call(ship, "a"), call(ship, "b"), sleep(5)))

    d = drive(fan(), [])
    assert sorted(d.pending) == [0, 1, 2]
    d.resolve(1, entry(1, "call", "ship", "B", args=("b",)), True, "B")
    d.resolve(2, entry(2, "sleep"), True, None)
    assert d.state == "waiting"
    d.resolve(0, entry(0, "call", "ship", "A", args=("a",)), True, "A")
    assert (d.state, d.result) == ("done", ["A", "B", None])
    # A crash after member 1 was recorded: replay runs only member 0 live.
    d2 = drive(fan(), [entry(1, "call", "ship", "B", args=("b",))])
    assert sorted(d2.pending) == [0, 2]


def test_gather_throws_first_failure_in_argument_order_after_all_finish() -> None:
    @reg.workflow(name="fan_fail")
    def fan_fail():
        try:
            yield gather(call(ship, "a"), call(ship, "b"))
        except durable.ActivityError as exc:
            return exc.message

    d = drive(fan_fail(), [])
    d.resolve(1, entry(1, "call", "ship", args=("b",)), False, durable.ActivityError(type="E", message="b", attempts=1))
    assert d.state == "waiting"  # waits for all
    d.resolve(0, entry(0, "call", "ship", args=("a",)), False, durable.ActivityError(type="E", message="a", attempts=1))
    assert d.result == "a"


def test_race_first_to_finish_wins_and_abandons_the_rest() -> None:
    @reg.workflow(name="racer")
    def racer():
        return (yield race(receive("cancel"), sleep(60), call(ship, "x")))

    d = drive(racer(), [])
    assert sorted(d.pending) == [0, 1, 2]
    d.resolve(2, entry(2, "call", "ship", "s", args=("x",)), True, "s")
    assert (d.state, d.result) == ("done", (2, "s"))
    assert sorted(leaf.position for leaf in d.take_abandoned()) == [0, 1]
    assert not d.wants(0)


def test_race_between_gather_and_sleep_with_partial_gather_recorded() -> None:
    @reg.workflow(name="nested")
    def nested():
        return (yield race(sleep(10), gather(call(ship, "a"), call(ship, "b"))))

    # Member 1's first call finished, then the sleep (position 0) won.
    d = drive(nested(), [entry(1, "call", "ship", "A", args=("a",)), entry(0, "sleep")])
    assert (d.state, d.result) == ("done", (0, None))
    d2 = drive(nested(), [entry(1, "call", "ship", "A", args=("a",)), entry(2, "call", "ship", "B", args=("b",))])
    assert (d2.state, d2.result) == ("done", (1, ["A", "B"]))


def test_empty_gather_returns_empty_list() -> None:
    @reg.workflow(name="empty")
    def empty():
        return (yield gather())

    assert drive(empty(), []).result == []


def test_pure_effects_recorded_live_through_the_live_callback() -> None:
    @reg.workflow(name="pure")
    def pure():
        a = yield uuid()
        b = yield now()
        return a, b

    made = []

    def live(effect: Any, position: int) -> tuple[tuple, Any]:
        made.append((effect.kind, position))
        return (position, effect.kind, "", b"", False, f"v{position}"), f"v{position}"

    d = drive(pure(), [], live=live)
    assert (d.state, d.result, made) == ("done", ("v0", "v1"), [("uuid", 0), ("now", 1)])
    assert [e[0] for e in d.take_outbox()] == [0, 1]
    # Offline (live=None): the first pure effect past the tail is reported, not made.
    offline = drive(pure(), [entry(0, "uuid", value="u")])
    assert offline.state == "waiting" and [leaf.effect.kind for leaf in offline.pending.values()] == ["now"]


def test_version_marker_live_old_and_recorded() -> None:
    @reg.workflow(name="versioned")
    def versioned():
        v = yield version("add-ship", latest=2)
        if v >= 1:
            yield call(ship, "new")
        yield sleep(1)
        return v

    def live(effect: Any, position: int) -> tuple[tuple, Any]:
        return (position, effect.kind, effect.name, b"", False, effect.latest), effect.latest

    fresh = drive(versioned(), [], live=live)
    assert fresh.take_outbox()[0][1:3] == ("version", "add-ship")
    # A run recorded under old code (no marker, sleep at position 0) takes the old path.
    old = drive(versioned(), [entry(0, "sleep")], live=live)
    assert (old.state, old.result) == ("done", 0)
    # A run that recorded the marker at 1 keeps it even though latest is now 2.
    marked = drive(versioned(), [entry(0, "version", "add-ship", 1), entry(1, "call", "ship", "s", args=("new",)),
                                 entry(2, "sleep")], live=live)
    assert (marked.state, marked.result) == ("done", 1)


def test_feeding_in_chunks_gives_the_same_outcome() -> None:
    @reg.workflow(name="long")
    def long(n: int):
        total = 0
        for i in range(n):
            total += yield call(ship, str(i))
        return total

    entries = [entry(i, "call", "ship", i, args=(str(i),)) for i in range(50)]
    d = Driver(long(50), workflow_id="w", workflow="long", digest=digest, decode=decode)
    d.feed(entries[:7])
    d.start()
    assert d.state == "need_more"
    for start in range(7, 50, 7):
        d.feed(entries[start : start + 7])
    d.feed((), last=True)
    assert (d.state, d.result, d.replayed) == ("done", sum(range(50)), 50)


@given(st.lists(st.integers(0, 5), max_size=12), st.data())
def test_replay_of_any_recorded_prefix_reaches_the_live_run(values: list[int], data: st.DataObject) -> None:
    @reg.workflow(name="prop")
    def prop(n: int):
        out = []
        for i in range(n):
            if (yield call(ship, str(i))):
                out.append((yield sleep(1)))
        return out

    # Live run: record every outcome.
    d = drive(prop(len(values)), [])
    recorded = []
    while d.state == "waiting":
        (leaf,) = d.pending.values()
        value = values[len([e for e in recorded if e[1] == "call"])] if leaf.kind == "call" else None
        e = entry(leaf.position, leaf.kind, getattr(leaf.effect, "name", "") if leaf.kind == "call" else "",
                  value, args=getattr(leaf.effect, "args", ()))
        recorded.append(e)
        d.resolve(leaf.position, e, True, value)
    # Crash anywhere: replaying the prefix and finishing live gives the same result.
    cut = data.draw(st.integers(0, len(recorded)))
    r = drive(prop(len(values)), recorded[:cut])
    for e in recorded[cut:]:
        r.resolve(e[0], e, True, e[5])
    assert (r.state, r.result) == (d.state, d.result)


def _line_of(fragment: str) -> int:
    with open(__file__) as source:
        for number, line in enumerate(source, 1):
            if fragment in line:
                return number
    raise AssertionError(fragment)


def test_returning_while_entries_remain_names_the_line_it_returned_at() -> None:
    def returns_early():
        yield call(ship, "a")
        return "early"  # the line the error must name

    with pytest.raises(NondeterminismError) as info:
        drive(returns_early(), [entry(0, "call", "ship", "s", args=("a",)), entry(1, "sleep")])
    line = _line_of('return "early"  # the line')
    assert info.value.location is not None and info.value.location.endswith(f"test_driver.py:{line}")
    assert f"test_driver.py:{line}" in str(info.value)


def test_raising_while_entries_remain_names_the_line_it_raised_at() -> None:
    def raises_early():
        yield call(ship, "a")
        raise KeyError("gone")  # the line the error must name

    with pytest.raises(NondeterminismError, match="raises KeyError") as info:
        drive(raises_early(), [entry(0, "call", "ship", "s", args=("a",)), entry(1, "sleep")])
    line = _line_of('raise KeyError("gone")  # the line')
    assert info.value.location is not None and info.value.location.endswith(f"test_driver.py:{line}")


@pytest.mark.parametrize("constructor", [sleep, receive, call, gather, race, uuid, now, version])
def test_yielding_an_effect_constructor_itself_hints_at_calling_it(constructor: Any) -> None:
    def forgot_parentheses():
        try:
            yield constructor
        except TypeError as exc:
            return str(exc)

    d = drive(forgot_parentheses(), [])
    name = constructor.__name__
    assert d.state == "done"
    assert f"did you mean `yield {name}(...)`?" in d.result and "effects are made by calling them" in d.result
    assert "position 0" in d.result
