"""Retry policy, activity_info() and activity timeouts — DESIGN.md 'Retry', 'activity timeout'."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

import durable
from durable import Retry, activity, activity_info, call

from .conftest import memory_engine, wait_until

reg = durable.Registry()
LOG: list = []
CLOCK: dict[str, durable.VirtualClock] = {}
RELEASE = threading.Event()


class Transient(Exception):
    pass


class Fatal(Exception):
    pass


class FatalChild(Fatal):
    pass


@pytest.fixture(autouse=True)
def _reset():
    LOG.clear()
    CLOCK.clear()
    RELEASE.clear()
    yield
    RELEASE.set()


def _info_tuple():
    info = activity_info()
    return (info.workflow_id, info.position, info.attempt, info.idempotency_key)


@activity(name="rt.flaky", retry=Retry(attempts=3, initial=0.01, backoff=1.0))
def flaky(fail_times):
    LOG.append(_info_tuple())
    if len(LOG) <= fail_times:
        raise Transient(f"attempt {len(LOG)}")
    return f"ok after {len(LOG)}"


@activity(name="rt.non-retryable", retry=Retry(attempts=5, initial=0.01, non_retryable=(Fatal,)))
def non_retryable(exc_name):
    LOG.append(exc_name)
    raise {"Fatal": Fatal, "FatalChild": FatalChild, "Transient": Transient}[exc_name](exc_name)


@activity(name="rt.timed", retry=Retry(attempts=3, initial=10.0, backoff=10.0, maximum=15.0))
def timed():
    LOG.append(CLOCK["c"].now())
    raise Transient("again")


@activity
def bare_default():
    LOG.append(CLOCK["c"].now())
    raise Transient("bare")


@activity(name="rt.async-timeout", retry=Retry(attempts=2, initial=0.01), timeout=0.05)
async def async_too_slow():
    LOG.append("start")
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        LOG.append("cancelled")
        raise
    return "never"


@activity(name="rt.sync-timeout", retry=Retry(attempts=2, initial=0.01), timeout=0.1)
def sync_slow_first():
    LOG.append("start")
    if LOG.count("start") == 1:
        RELEASE.wait(5)
        LOG.append("late first attempt returned")
        return "late"
    return "second attempt"


@activity(name="rt.key-across-restart", retry=Retry(attempts=1))
async def key_across_restart():
    LOG.append(_info_tuple())
    if len(LOG) == 1:
        await asyncio.Event().wait()  # in flight when the engine stops
    return "done"


@reg.workflow(name="rt.flaky")
def wf_flaky(fail_times):
    yield durable.uuid()
    try:
        return (yield call(flaky, fail_times))
    except durable.ActivityError as e:
        return ["ActivityError", e.attempts, e.message]


@reg.workflow(name="rt.one")
def wf_one(fn_name, *args):
    fn = {
        "non_retryable": non_retryable,
        "timed": timed,
        "bare_default": bare_default,
        "async_too_slow": async_too_slow,
        "sync_slow_first": sync_slow_first,
        "key_across_restart": key_across_restart,
    }[fn_name]
    return (yield call(fn, *args))


async def test_activity_retried_until_it_succeeds_with_stable_idempotency_key() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_flaky, 2, id="rt-flaky")
        assert await handle.result(timeout=2) == "ok after 3"
        entries = await engine.journal("rt-flaky")
    assert [(wid, pos) for wid, pos, _, _ in LOG] == [("rt-flaky", 1)] * 3
    attempts = [a for _, _, a, _ in LOG]
    assert attempts == [attempts[0], attempts[0] + 1, attempts[0] + 2]
    assert attempts[0] == 1
    keys = {k for _, _, _, k in LOG}
    assert len(keys) == 1 and isinstance(keys.pop(), str)
    # a history records the outcome, not a row per failed attempt
    assert [(e.kind, e.name, e.value) for e in entries[1:]] == [("call", "rt.flaky", "ok after 3")]


async def test_idempotency_keys_differ_between_workflows_and_positions() -> None:
    async with memory_engine(reg) as engine:
        await (await engine.start(wf_flaky, 0, id="rt-key-a")).result(timeout=2)
        await (await engine.start(wf_flaky, 0, id="rt-key-b")).result(timeout=2)
    assert LOG[0][3] != LOG[1][3]


async def test_retries_exhausted_give_activityerror_with_attempts() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_flaky, 99, id="rt-exhausted")
        assert await handle.result(timeout=2) == ["ActivityError", 3, "attempt 3"]
    assert len(LOG) == 3


async def test_activityerror_fields_after_retries_exhausted() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_one, "non_retryable", "Transient", id="rt-fields")
        with pytest.raises(durable.WorkflowFailedError) as info:
            await engine.result("rt-fields", timeout=2)
    err = info.value.cause
    assert isinstance(err, durable.ActivityError)
    assert err.type in {f"{__name__}.Transient", f"{__name__}:Transient"}
    assert err.message == "Transient"
    assert err.attempts == 5
    assert type(err.cause) is Transient
    assert err.cause.args == ("Transient",)
    assert LOG == ["Transient"] * 5


@pytest.mark.parametrize("exc_name", ["Fatal", "FatalChild"])
async def test_non_retryable_is_matched_with_isinstance_and_not_retried(exc_name) -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_one, "non_retryable", exc_name, id=f"rt-nonretry-{exc_name}")
        with pytest.raises(durable.WorkflowFailedError) as info:
            await engine.result(f"rt-nonretry-{exc_name}", timeout=2)
    err = info.value.cause
    assert isinstance(err, durable.ActivityError)
    assert err.attempts == 1
    assert LOG == [exc_name]
    assert err.type in {f"{__name__}.{exc_name}", f"{__name__}:{exc_name}"}


async def test_maximum_caps_each_single_delay() -> None:
    clock = durable.VirtualClock()
    CLOCK["c"] = clock
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_one, "timed", id="rt-maximum")
        with pytest.raises(durable.WorkflowFailedError):
            await engine.result("rt-maximum", timeout=2)
    delays = [b - a for a, b in zip(LOG, LOG[1:])]
    assert len(delays) == 2
    assert delays[0] == pytest.approx(10.0, rel=0.1)
    assert delays[1] == pytest.approx(15.0, rel=0.1)  # 10 * 10 = 100, capped at 15


async def test_bare_activity_default_policy_is_3_attempts_1s_then_2s() -> None:
    clock = durable.VirtualClock()
    CLOCK["c"] = clock
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_one, "bare_default", id="rt-bare")
        with pytest.raises(durable.WorkflowFailedError) as info:
            await engine.result("rt-bare", timeout=2)
    assert info.value.cause.attempts == 3
    delays = [b - a for a, b in zip(LOG, LOG[1:])]
    assert len(delays) == 2
    assert delays[0] == pytest.approx(1.0, rel=0.1)
    assert delays[1] == pytest.approx(2.0, rel=0.1)


def test_retry_defaults_match_the_bare_activity_policy() -> None:
    r = Retry(attempts=3, initial=1.0, backoff=2.0, maximum=60.0)
    assert (r.attempts, r.initial, r.backoff, r.maximum) == (3, 1.0, 2.0, 60.0)
    assert tuple(r.non_retryable) == ()


def test_retry_non_retryable_is_a_tuple_of_classes() -> None:
    r = Retry(non_retryable=(Fatal, KeyError))
    assert r.non_retryable == (Fatal, KeyError)


async def test_async_activity_timeout_cancels_the_attempt_and_counts_as_durable_timeout() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_one, "async_too_slow", id="rt-async-timeout")
        with pytest.raises(durable.WorkflowFailedError) as info:
            await engine.result("rt-async-timeout", timeout=3)
        await wait_until(lambda: LOG.count("cancelled") == 2, what="both attempts cancelled")
    err = info.value.cause
    assert isinstance(err, durable.ActivityError)
    assert err.attempts == 2
    assert err.type == "durable.Timeout"  # DESIGN: "a failed attempt with type `durable.Timeout`"
    assert err.cause is None or isinstance(err.cause, durable.Timeout)
    assert LOG.count("start") == 2


async def test_sync_activity_timeout_retries_and_discards_the_late_result() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_one, "sync_slow_first", id="rt-sync-timeout")
        assert await engine.result("rt-sync-timeout", timeout=3) == "second attempt"
        RELEASE.set()
        await wait_until(lambda: "late first attempt returned" in LOG, what="first thread to return")
        await asyncio.sleep(0.02)
        entries = await engine.journal("rt-sync-timeout")
        assert await engine.result("rt-sync-timeout", timeout=1) == "second attempt"
    assert [(e.kind, e.value) for e in entries] == [("call", "second attempt")]


async def test_idempotency_key_is_stable_across_an_engine_restart() -> None:
    store = durable.store.MemoryStore()
    engine = durable.Engine(store, registry=reg)
    await engine.__aenter__()
    try:
        await engine.start(wf_one, "key_across_restart", id="rt-key-restart")
        await wait_until(lambda: len(LOG) == 1, what="first attempt")
    finally:
        await asyncio.wait_for(engine.__aexit__(None, None, None), 3)
    async with durable.Engine(store, registry=reg) as engine:
        assert await engine.result("rt-key-restart", timeout=2) == "done"
    assert len(LOG) == 2
    assert LOG[0][0] == LOG[1][0] == "rt-key-restart"
    assert LOG[0][1] == LOG[1][1] == 0
    assert LOG[0][3] == LOG[1][3]



@activity(name="rt.local-error", retry=Retry(attempts=1))
def local_error():
    class LocalError(Exception):
        pass

    raise LocalError("made here")


async def test_activityerror_for_an_exception_that_cannot_be_rebuilt_keeps_type_and_message() -> None:
    reg_local = durable.Registry()

    @reg_local.workflow(name="rt.local")
    def wf_local():
        return (yield call(local_error))

    async with memory_engine(reg_local) as engine:
        await engine.start(wf_local, id="rt-local")
        with pytest.raises(durable.WorkflowFailedError) as info:
            await engine.result("rt-local", timeout=2)
    err = info.value.cause
    assert isinstance(err, durable.ActivityError)
    assert err.type.endswith("LocalError")
    assert err.message == "made here"
    assert err.attempts == 1
    assert err.cause is None or type(err.cause).__name__ == "LocalError"


def _jittery_activity(jitter):
    @activity(name="rt.jitter", retry=Retry(attempts=6, initial=10.0, backoff=1.0, maximum=10.0, jitter=jitter))
    def jittery():
        LOG.append(CLOCK["c"].now())
        raise Transient("again")

    return jittery


@pytest.mark.parametrize("jitter", [0.1, 0.5])
async def test_jitter_is_at_most_ten_percent(jitter) -> None:
    try:
        jittery = _jittery_activity(jitter)
    except ValueError:
        assert jitter > 0.1  # refusing more than 10 % is one way to keep the promise
        return
    clock = durable.VirtualClock()
    CLOCK["c"] = clock
    reg_local = durable.Registry()

    @reg_local.workflow(name="rt.jitter")
    def wf_jitter():
        return (yield call(jittery))

    async with memory_engine(reg_local, clock=clock) as engine:
        await engine.start(wf_jitter, id="rt-jitter")
        with pytest.raises(durable.WorkflowFailedError):
            await engine.result("rt-jitter", timeout=2)
    delays = [b - a for a, b in zip(LOG, LOG[1:])]
    assert len(delays) == 5
    assert all(9.0 - 1e-6 <= d <= 11.0 + 1e-6 for d in delays), delays


@activity(name="rt.single-non-retryable", retry=Retry(attempts=5, initial=0.01, non_retryable=Fatal))
def single_non_retryable(exc_name):
    LOG.append(exc_name)
    raise {"FatalChild": FatalChild, "Transient": Transient}[exc_name](exc_name)


@activity(name="rt.timedelta-timeout", retry=Retry(attempts=2, initial=0.01), timeout=timedelta(milliseconds=50))
async def timedelta_too_slow():
    LOG.append("start")
    await asyncio.Event().wait()


@reg.workflow(name="rt.catch-one")
def wf_catch_one(fn_name, *args):
    fn = {"single_non_retryable": single_non_retryable, "timedelta_too_slow": timedelta_too_slow}[fn_name]
    try:
        return (yield call(fn, *args))
    except durable.ActivityError as e:
        return [e.type, e.attempts]


def test_retry_non_retryable_takes_a_single_class_too() -> None:
    assert Retry(non_retryable=Fatal).non_retryable == (Fatal,)
    assert Retry(non_retryable=Fatal) == Retry(non_retryable=(Fatal,))
    with pytest.raises(TypeError, match="exception class"):
        Retry(non_retryable=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exception classes"):
        Retry(non_retryable=(Fatal, "Transient"))  # type: ignore[arg-type]


@pytest.mark.parametrize("attempts", [True, False, 0, 1.5, "3"])
def test_retry_attempts_must_be_a_positive_int_not_a_bool(attempts) -> None:
    with pytest.raises((TypeError, ValueError), match="attempts"):
        Retry(attempts=attempts)


async def test_a_single_non_retryable_class_stops_retries_in_the_engine() -> None:
    async with memory_engine(reg) as engine:
        got = await (await engine.start(wf_catch_one, "single_non_retryable", "FatalChild",
                                        id="rt-single-nonretry")).result(timeout=3)
    assert got == [f"{__name__}.FatalChild", 1]
    assert LOG == ["FatalChild"]


async def test_activity_timeout_as_a_timedelta_applies_per_attempt() -> None:
    assert timedelta_too_slow.timeout == 0.05
    async with memory_engine(reg) as engine:
        got = await (await engine.start(wf_catch_one, "timedelta_too_slow", id="rt-timedelta")).result(timeout=3)
    assert got == ["durable.Timeout", 2]
    assert LOG == ["start", "start"]
