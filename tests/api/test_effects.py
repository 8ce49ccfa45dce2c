"""Every effect from DESIGN.md 'Effects', run on Engine("memory:")."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid as uuid_mod
from datetime import datetime, timedelta

import pytest

import durable
from durable import Retry, activity, call, gather, now, race, receive, sleep, uuid

from .conftest import memory_engine, wait_status, wait_until

reg = durable.Registry()
LOG: list = []
GATES: dict[str, asyncio.Event] = {}
BARRIERS: dict[str, object] = {}


class AppError(Exception):
    pass


@pytest.fixture(autouse=True)
def _reset():
    LOG.clear()
    GATES.clear()
    BARRIERS.clear()
    yield


@activity(name="fx.echo")
def echo(x):
    LOG.append(("echo", x))
    return x


@activity(name="fx.aecho")
async def aecho(x):
    LOG.append(("aecho", x))
    return x


@activity(name="fx.kw")
def kw(a, *, b=0, c=0):
    return [a, b, c]


@activity(name="fx.gated", retry=Retry(attempts=1))
async def gated(tag, fail=False):
    await GATES[tag].wait()
    LOG.append(("gated", tag))
    if fail:
        raise AppError(tag)
    return tag


@activity(name="fx.fail_now", retry=Retry(attempts=1))
def fail_now(tag):
    LOG.append(("fail_now", tag))
    raise AppError(tag)


@activity(name="fx.meet_async", retry=Retry(attempts=1))
async def meet_async(tag):
    await asyncio.wait_for(BARRIERS["async"].wait(), 2)
    return tag


@activity(name="fx.meet_sync", retry=Retry(attempts=1))
def meet_sync(tag):
    BARRIERS["sync"].wait()
    return tag


@activity(name="fx.flaky_forever", retry=Retry(attempts=1000, initial=1.0, backoff=1.0, maximum=1.0))
async def flaky_forever():
    LOG.append("attempt")
    raise AppError("again")


# ---------------------------------------------------------------- call


@reg.workflow(name="fx.call")
def wf_call():
    a = yield call(echo, "s")
    b = yield call(aecho, "a")
    c = yield call(kw, 1, c=3)
    return [a, b, c]


async def test_call_runs_sync_and_async_activities_with_args_and_kwargs() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_call, id="fx-call")
        assert await handle.result(timeout=2) == ["s", "a", [1, 0, 3]]
        assert await engine.status("fx-call") == "completed"
        entries = await engine.journal("fx-call")
    assert [(e.position, e.kind, e.name, e.value) for e in entries] == [
        (0, "call", "fx.echo", "s"),
        (1, "call", "fx.aecho", "a"),
        (2, "call", "fx.kw", [1, 0, 3]),
    ]


def test_effects_are_plain_values_constructing_one_runs_nothing() -> None:
    call(echo, "x")
    gather(call(echo, "y"), call(aecho, "z"))
    race(call(echo, "w"))
    assert LOG == []


# ---------------------------------------------------------------- sleep


@reg.workflow(name="fx.sleep")
def wf_sleep(as_timedelta):
    outcome = yield sleep(timedelta(seconds=60) if as_timedelta else 60)
    return ["slept", outcome]


@pytest.mark.parametrize("as_timedelta", [False, True], ids=["seconds", "timedelta"])
async def test_sleep_waits_for_the_clock_and_its_outcome_is_none(as_timedelta) -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_sleep, as_timedelta, id="fx-sleep")
        await wait_status(engine, "fx-sleep", "waiting")
        clock.advance(59)
        with pytest.raises(TimeoutError):
            await engine.result("fx-sleep", timeout=0.05)
        assert await engine.status("fx-sleep") == "waiting"
        clock.advance(1)
        await wait_status(engine, "fx-sleep", "completed")
        assert await engine.result("fx-sleep", timeout=1) == ["slept", None]
        assert [e.kind for e in await engine.journal("fx-sleep")] == ["sleep"]


@reg.workflow(name="fx.week")
def wf_week():
    t1 = yield now()
    yield sleep(timedelta(days=7))
    t2 = yield now()
    return (t2 - t1).total_seconds()


async def test_result_with_virtual_clock_skips_time_when_idle() -> None:
    clock = durable.VirtualClock()
    before = clock.now()
    async with memory_engine(reg, clock=clock) as engine:
        handle = await engine.start(wf_week, id="fx-week")
        elapsed = await handle.result(timeout=2)
    assert clock.now() - before >= 7 * 86400
    # now() is recorded from the engine's clock, so a week passed for the workflow too.
    assert elapsed >= 7 * 86400


# ---------------------------------------------------------------- receive


@reg.workflow(name="fx.receive")
def wf_receive(as_timedelta):
    try:
        who = yield receive("approve", timeout=timedelta(seconds=30) if as_timedelta else 30)
    except durable.Timeout:
        return "timeout"
    return ["approved by", who]


@pytest.mark.parametrize("as_timedelta", [False, True], ids=["seconds", "timedelta"])
async def test_receive_returns_the_signal_payload(as_timedelta) -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_receive, as_timedelta, id="fx-recv")
        await wait_status(engine, "fx-recv", "waiting")
        await engine.signal("fx-recv", "approve", "ann")
        assert await engine.result("fx-recv", timeout=2) == ["approved by", "ann"]
        entries = await engine.journal("fx-recv")
    assert [(e.kind, e.name, e.value) for e in entries] == [("receive", "approve", "ann")]


@pytest.mark.parametrize("as_timedelta", [False, True], ids=["seconds", "timedelta"])
async def test_receive_timeout_throws_durable_timeout_into_the_generator(as_timedelta) -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_receive, as_timedelta, id="fx-recv-to")
        await wait_status(engine, "fx-recv-to", "waiting")
        clock.advance(29)
        with pytest.raises(TimeoutError):
            await engine.result("fx-recv-to", timeout=0.05)
        clock.advance(1)
        assert await engine.result("fx-recv-to", timeout=2) == "timeout"
        assert await engine.status("fx-recv-to") == "completed"


async def test_receive_timeout_is_skipped_to_by_result_with_virtual_clock() -> None:
    clock = durable.VirtualClock()
    async with memory_engine(reg, clock=clock) as engine:
        handle = await engine.start(wf_receive, False, id="fx-recv-skip")
        assert await handle.result(timeout=2) == "timeout"


# ---------------------------------------------------------------- uuid, now, random


@reg.workflow(name="fx.pure")
def wf_pure():
    u = yield uuid()
    t = yield now()
    r = yield durable.random()
    checks = [
        type(u) is uuid_mod.UUID,
        type(t) is datetime and t.tzinfo is not None and t.utcoffset() == timedelta(0),
        type(r) is float and 0.0 <= r < 1.0,
    ]
    yield receive("go")
    return [u, t, r, checks]


async def test_uuid_now_random_types_and_recorded_values() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_pure, id="fx-pure")
        await wait_status(engine, "fx-pure", "waiting")
        await engine.signal("fx-pure", "go")
        u, t, r, checks = await engine.result("fx-pure", timeout=2)
        entries = await engine.journal("fx-pure")
    assert checks == [True, True, True]
    assert [(e.position, e.kind) for e in entries] == [(0, "uuid"), (1, "now"), (2, "random"), (3, "receive")]
    assert [e.value for e in entries[:3]] == [u, t, r]
    assert type(entries[0].value) is uuid_mod.UUID
    assert type(entries[1].value) is datetime
    assert type(entries[2].value) is float


async def test_uuid_now_random_replay_to_the_same_values_after_restart() -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_pure, id="fx-pure-replay")
        await wait_status(engine, "fx-pure-replay", "waiting")
        recorded = [e.value for e in await engine.journal("fx-pure-replay")]
    assert len(recorded) == 3
    async with durable.Engine(store, registry=reg) as engine:
        await engine.signal("fx-pure-replay", "go")
        u, t, r, checks = await engine.result("fx-pure-replay", timeout=2)
    assert [u, t, r] == recorded
    assert checks == [True, True, True]


@reg.workflow(name="fx.two-uuids")
def wf_two_uuids():
    a = yield uuid()
    b = yield uuid()
    return a != b


async def test_uuid_values_differ_between_calls() -> None:
    async with memory_engine(reg) as engine:
        assert await (await engine.start(wf_two_uuids, id="fx-uuid2")).result(timeout=2) is True


# ---------------------------------------------------------------- gather


@reg.workflow(name="fx.gather")
def wf_gather():
    out = yield gather(call(echo, 1), call(aecho, "two"), call(kw, 3, b=4))
    return [type(out).__name__, out]


async def test_gather_returns_a_list_in_argument_order_and_journals_each_member() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_gather, id="fx-gather")
        assert await handle.result(timeout=2) == ["list", [1, "two", [3, 4, 0]]]
        entries = await engine.journal("fx-gather")
    assert [e.position for e in entries] == [0, 1, 2]
    assert sorted((e.kind, e.name, repr(e.value)) for e in entries) == sorted(
        [("call", "fx.echo", "1"), ("call", "fx.aecho", "'two'"), ("call", "fx.kw", "[3, 4, 0]")]
    )


@reg.workflow(name="fx.gather-empty")
def wf_gather_empty():
    out = yield gather()
    return out


async def test_gather_of_nothing_is_an_empty_list() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_gather_empty, id="fx-gather-empty")
        assert await handle.result(timeout=1) == []
        assert await engine.journal("fx-gather-empty") == []


@reg.workflow(name="fx.gather-concurrent")
def wf_gather_concurrent(kind):
    fn = meet_async if kind == "async" else meet_sync
    return (yield gather(call(fn, "a"), call(fn, "b")))


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_gather_runs_members_concurrently(kind) -> None:
    # Each member waits for the other: run one after the other, they cannot finish.
    BARRIERS["async"] = asyncio.Barrier(2)
    BARRIERS["sync"] = threading.Barrier(2, timeout=2)
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_gather_concurrent, kind, id=f"fx-gather-conc-{kind}")
        assert await handle.result(timeout=3) == ["a", "b"]


@reg.workflow(name="fx.gather-fail")
def wf_gather_fail():
    try:
        yield gather(call(gated, "first", fail=True), call(gated, "ok"), call(fail_now, "third"))
    except durable.ActivityError as e:
        return ["failed", e.message]
    return "no failure"


async def test_gather_throws_first_failure_in_argument_order_once_all_finished() -> None:
    GATES["first"] = asyncio.Event()
    GATES["ok"] = asyncio.Event()
    async with memory_engine(reg) as engine:
        await engine.start(wf_gather_fail, id="fx-gather-fail")
        await wait_until(lambda: ("fail_now", "third") in LOG, what="third member to fail")
        GATES["first"].set()
        await wait_until(lambda: ("gated", "first") in LOG, what="first member to fail")
        # One member is still running: the failure must not be thrown yet.
        with pytest.raises(TimeoutError):
            await engine.result("fx-gather-fail", timeout=0.05)
        assert await engine.status("fx-gather-fail") == "running"
        GATES["ok"].set()
        assert await engine.result("fx-gather-fail", timeout=2) == ["failed", "first"]
        entries = await engine.journal("fx-gather-fail")
    assert sorted(e.position for e in entries) == [0, 1, 2]
    assert [e.value for e in entries if e.name == "fx.gated" and e.value == "ok"] == ["ok"]


@reg.workflow(name="fx.gather-mixed")
def wf_gather_mixed():
    out = yield gather(receive("a"), sleep(5), call(echo, 3))
    return out


async def test_gather_mixes_signals_timers_and_calls() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_gather_mixed, id="fx-gather-mixed")
        await wait_status(engine, "fx-gather-mixed", "waiting")
        await engine.signal("fx-gather-mixed", "a", {"k": 1})
        clock.advance(5)
        assert await engine.result("fx-gather-mixed", timeout=2) == [{"k": 1}, None, 3]


# ---------------------------------------------------------------- race


@reg.workflow(name="fx.race")
def wf_race():
    out = yield race(receive("cancel"), sleep(60))
    return [type(out).__name__, list(out)]


async def test_race_signal_wins_before_timer() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_race, id="fx-race-sig")
        await wait_status(engine, "fx-race-sig", "waiting")
        await engine.signal("fx-race-sig", "cancel", "stop!")
        assert await engine.result("fx-race-sig", timeout=2) == ["tuple", [0, "stop!"]]


async def test_race_timer_wins_with_outcome_none() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_race, id="fx-race-timer")
        await wait_status(engine, "fx-race-timer", "waiting")
        clock.advance(60)
        assert await engine.result("fx-race-timer", timeout=2) == ["tuple", [1, None]]
        assert await engine.status("fx-race-timer") == "completed"


@reg.workflow(name="fx.race-fail")
def wf_race_fail():
    try:
        out = yield race(receive("never"), call(fail_now, "boom"))
    except durable.ActivityError as e:
        return ["thrown", e.message]
    return ["won", list(out)]


async def test_race_failure_that_finishes_first_is_thrown() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_race_fail, id="fx-race-fail")
        assert await handle.result(timeout=2) == ["thrown", "boom"]


@reg.workflow(name="fx.race-ready")
def wf_race_ready():
    yield receive("go")
    first = yield race(receive("b"), receive("a"))
    rest_a = yield receive("a")
    rest_b = yield receive("b")
    return [list(first), rest_a, rest_b]


async def test_race_lowest_index_wins_among_ready_and_abandoned_receive_consumes_nothing() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_race_ready, id="fx-race-ready")
        await wait_status(engine, "fx-race-ready", "waiting")
        await engine.signal("fx-race-ready", "a", "a1")
        await engine.signal("fx-race-ready", "b", "b1")
        await engine.signal("fx-race-ready", "b", "b2")
        await engine.signal("fx-race-ready", "go")
        assert await engine.result("fx-race-ready", timeout=2) == [[0, "b1"], "a1", "b2"]


@reg.workflow(name="fx.race-timers")
def wf_race_timers(a, b):
    return list((yield race(sleep(a), sleep(b))))


@pytest.mark.parametrize(("a", "b", "expected"), [(10, 10, [0, None]), (20, 10, [1, None]), (10, 20, [0, None])])
async def test_race_between_timers(a, b, expected) -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_race_timers, a, b, id="fx-race-timers")
        await wait_status(engine, "fx-race-timers", "waiting")
        clock.advance(min(a, b))
        assert await engine.result("fx-race-timers", timeout=2) == expected


def test_race_needs_at_least_one_effect() -> None:
    with pytest.raises((TypeError, ValueError)):
        race()


@reg.workflow(name="fx.race-abandon")
def wf_race_abandon():
    out = yield race(call(flaky_forever), receive("stop"))
    return list(out)


async def test_race_abandoned_activity_stops_retrying() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_race_abandon, id="fx-race-abandon")
        await wait_until(lambda: LOG.count("attempt") == 1, what="first attempt")
        await wait_status(engine, "fx-race-abandon", "waiting")  # retry backoff
        clock.advance(1)
        await wait_until(lambda: LOG.count("attempt") == 2, what="second attempt")
        await engine.signal("fx-race-abandon", "stop", "now")
        assert await engine.result("fx-race-abandon", timeout=2) == [1, "now"]
        attempts = LOG.count("attempt")
        for _ in range(5):
            clock.advance(10)
            await asyncio.sleep(0.01)
        assert LOG.count("attempt") == attempts


# ---------------------------------------------------------------- nested composites


@reg.workflow(name="fx.nested")
def wf_nested():
    out = yield race(gather(call(echo, "a"), call(aecho, "b")), sleep(60))
    return list(out)


async def test_race_between_a_gather_and_a_sleep_gather_wins() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        handle = await engine.start(wf_nested, id="fx-nested")
        assert await handle.result(timeout=2) == [0, ["a", "b"]]
        entries = await engine.journal("fx-nested")
    calls = sorted((e.name, e.value) for e in entries if e.kind == "call")
    assert calls == [("fx.aecho", "b"), ("fx.echo", "a")]
    assert [e.position for e in entries] == sorted(e.position for e in entries)


@reg.workflow(name="fx.nested-sleep")
def wf_nested_sleep():
    out = yield race(gather(receive("never"), call(echo, 1)), sleep(60))
    after = yield receive("never")
    return [list(out), after]


async def test_race_between_a_gather_and_a_sleep_sleep_wins() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_nested_sleep, id="fx-nested-sleep")
        await wait_until(lambda: ("echo", 1) in LOG, what="gather member to run")
        await wait_status(engine, "fx-nested-sleep", "waiting")
        clock.advance(60)
        # the abandoned receive inside the gather consumed nothing
        await wait_until(
            lambda: _journal_has(engine, "fx-nested-sleep", "sleep"), what="sleep entry"
        )
        await engine.signal("fx-nested-sleep", "never", "late")
        assert await engine.result("fx-nested-sleep", timeout=2) == [[1, None], "late"]


async def _journal_has(engine, wid, kind):
    return any(e.kind == kind for e in await engine.journal(wid))


@reg.workflow(name="fx.gather-of-races")
def wf_gather_of_races():
    out = yield gather(race(receive("a"), sleep(5)), race(receive("b"), sleep(50)), call(echo, 3))
    return [[list(x) for x in out[:2]], out[2]]


async def test_gather_of_races() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_gather_of_races, id="fx-gor")
        await wait_status(engine, "fx-gor", "waiting")
        await engine.signal("fx-gor", "b", "bee")
        clock.advance(5)
        assert await engine.result("fx-gor", timeout=2) == [[[1, None], [0, "bee"]], 3]


# ---------------------------------------------------------------- yielding a non-effect


def _helper_subgenerator():
    x = yield uuid()
    return x


def _bad_yield_line() -> int:
    with open(__file__) as f:
        for number, line in enumerate(f, start=1):
            if "# BAD-YIELD" in line and "def " not in line and "if " not in line:
                return number
    raise AssertionError("marker not found")


@reg.workflow(name="fx.bad-yield")
def wf_bad_yield(which):
    yield uuid()
    yield now()
    yield durable.random()
    try:
        if which == "int":
            yield 42  # BAD-YIELD
        else:
            yield _helper_subgenerator()
    except TypeError as e:
        lines = []
        tb = e.__traceback__
        while tb is not None:
            lines.append(tb.tb_lineno)
            tb = tb.tb_next
        return [str(e), lines]
    return ["no error", []]


async def test_yielding_a_non_effect_throws_typeerror_naming_value_and_position() -> None:
    async with memory_engine(reg) as engine:
        message, lines = await (await engine.start(wf_bad_yield, "int", id="fx-bad-int")).result(timeout=2)
    assert message != "no error"
    assert "42" in message or "int" in message
    assert re.search(r"position\D{0,3}3\b", message), message
    assert _bad_yield_line() in lines  # the traceback points at the yield


async def test_yielding_a_generator_suggests_yield_from() -> None:
    async with memory_engine(reg) as engine:
        message, _ = await (await engine.start(wf_bad_yield, "gen", id="fx-bad-gen")).result(timeout=2)
    assert "yield from" in message
    assert "_helper_subgenerator" in message or "generator" in message


@reg.workflow(name="fx.bad-yield-uncaught")
def wf_bad_yield_uncaught():
    yield "not an effect"
    return "unreachable"


async def test_uncaught_non_effect_typeerror_fails_the_workflow() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_bad_yield_uncaught, id="fx-bad-uncaught")
        with pytest.raises(durable.WorkflowFailedError) as info:
            await handle.result(timeout=2)
        assert await engine.status("fx-bad-uncaught") == "failed"
    assert isinstance(info.value.cause, TypeError)


# ---------------------------------------------------------------- more fine points


@reg.workflow(name="fx.sleep-zero")
def wf_sleep_zero():
    a = yield sleep(0)
    b = yield sleep(timedelta(0))
    return [a, b]


async def test_sleep_zero_completes_with_none() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        assert await (await engine.start(wf_sleep_zero, id="fx-sleep0")).result(timeout=2) == [None, None]


@reg.workflow(name="fx.race-single")
def wf_race_single():
    out = yield race(call(echo, "only"))
    return [type(out).__name__, list(out)]


async def test_race_of_one_effect() -> None:
    async with memory_engine(reg) as engine:
        assert await (await engine.start(wf_race_single, id="fx-race1")).result(timeout=2) == ["tuple", [0, "only"]]


@activity(name="fx.async-forever", retry=Retry(attempts=1))
async def async_forever():
    LOG.append("forever-started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        LOG.append("forever-cancelled")
        raise


@reg.workflow(name="fx.race-abandon-running")
def wf_race_abandon_running():
    return list((yield race(call(async_forever), receive("stop"))))


async def test_race_abandoned_running_async_activity_is_cancelled() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_race_abandon_running, id="fx-race-abandon-run")
        await wait_until(lambda: "forever-started" in LOG, what="activity to start")
        await engine.signal("fx-race-abandon-run", "stop", 1)
        assert await engine.result("fx-race-abandon-run", timeout=2) == [1, 1]
        await wait_until(lambda: "forever-cancelled" in LOG, what="abandoned activity to be cancelled")


async def test_receive_timeout_deadline_survives_a_restart() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await engine.start(wf_receive, False, id="fx-recv-restart")
        await wait_status(engine, "fx-recv-restart", "waiting")
    clock.advance(20)
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await wait_status(engine, "fx-recv-restart", "waiting")
        clock.advance(9)
        with pytest.raises(TimeoutError):
            await engine.result("fx-recv-restart", timeout=0.05)
        clock.advance(1)
        assert await engine.result("fx-recv-restart", timeout=2) == "timeout"


@activity(name="fx.slow-real", retry=Retry(attempts=1))
async def slow_real():
    await asyncio.sleep(0.05)  # real time: the activity is genuinely in flight
    return "activity first"


@reg.workflow(name="fx.skip-not-past-activity")
def wf_skip_not_past_activity():
    return list((yield race(call(slow_real), sleep(3600))))


async def test_virtual_clock_does_not_skip_while_an_activity_is_in_flight() -> None:
    clock = durable.VirtualClock()
    async with memory_engine(reg, clock=clock) as engine:
        handle = await engine.start(wf_skip_not_past_activity, id="fx-skip-activity")
        assert await handle.result(timeout=2) == [0, "activity first"]


def test_effects_are_values_equal_by_kind_and_fields() -> None:
    assert sleep(5) == sleep(5) and sleep(5) != sleep(6)
    assert receive("go", timeout=3) == receive("go", timeout=3) != receive("go")
    assert uuid() == uuid() and uuid() != now()
    assert gather(sleep(1), receive("a")) == gather(sleep(1), receive("a")) != gather(sleep(1))
    assert race(sleep(1), receive("a")) != gather(sleep(1), receive("a"))
    with pytest.raises(TypeError):
        hash(sleep(5))  # equal by value and holding lists: unhashable, like a list
