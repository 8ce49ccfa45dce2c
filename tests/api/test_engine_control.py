"""Engine: start, result, status, journal, recovery — DESIGN.md 'Engine' and 'Fine points'."""

from __future__ import annotations

import asyncio
import threading

import pytest

import durable
from durable import Retry, activity, call, receive, sleep

from .conftest import journal_keys, memory_engine, shared_store, wait_status, wait_until

reg = durable.Registry()
RUNS: list = []
HOLD = threading.Event()


class Boom(Exception):
    pass


@pytest.fixture(autouse=True)
def _reset():
    RUNS.clear()
    HOLD.clear()
    yield
    HOLD.set()  # never leave a worker thread blocked


@activity(name="ec.record")
def record(x):
    RUNS.append(x)
    return x


@activity(name="ec.held", retry=Retry(attempts=1))
def held(x):
    RUNS.append(("held", x))
    HOLD.wait(5)
    return x


@activity(name="ec.fail-once", retry=Retry(attempts=2, initial=100.0))
def fail_once():
    RUNS.append("fail-once")
    if RUNS.count("fail-once") == 1:
        raise Boom("first attempt")
    return "second"


@reg.workflow(name="ec.echo")
def wf_echo(x, *, suffix=""):
    got = yield call(record, x)
    return f"{got}{suffix}"


@reg.workflow(name="ec.other")
def wf_other(x):
    yield receive("never")
    return x


@reg.workflow(name="ec.wait")
def wf_wait(tag):
    first = yield call(record, tag)
    signal = yield receive("go")
    return [first, signal]


@reg.workflow(name="ec.fail")
def wf_fail(msg):
    yield call(record, "before")
    raise Boom(msg)


@reg.workflow(name="ec.held")
def wf_held():
    return (yield call(held, "x"))


@reg.workflow(name="ec.backoff")
def wf_backoff():
    return (yield call(fail_once))


@reg.workflow(name="ec.timer")
def wf_timer(seconds):
    yield sleep(seconds)
    return (yield call(record, "after-sleep"))


# ---------------------------------------------------------------- start / result


async def test_start_returns_handle_whose_result_is_the_return_value() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_echo, "a", id="ec-1", suffix="!")
        assert isinstance(handle, durable.Handle)
        assert await handle.result(timeout=2) == "a!"
        assert await engine.result("ec-1", timeout=2) == "a!"
        assert await engine.result("ec-1") == "a!"  # no timeout: already finished


async def test_start_without_id_generates_distinct_ids() -> None:
    async with memory_engine(reg) as engine:
        h1 = await engine.start(wf_echo, "x")
        h2 = await engine.start(wf_echo, "y")
        assert await h1.result(timeout=2) == "x"
        assert await h2.result(timeout=2) == "y"
    assert sorted(RUNS) == ["x", "y"]


async def test_start_existing_id_is_idempotent_and_starts_nothing() -> None:
    async with memory_engine(reg) as engine:
        h1 = await engine.start(wf_wait, "first", id="ec-idem")
        await wait_status(engine, "ec-idem", "waiting")
        h2 = await engine.start(wf_wait, "second", id="ec-idem")
        await engine.signal("ec-idem", "go", 1)
        assert await h2.result(timeout=2) == ["first", 1]
        assert await h1.result(timeout=2) == ["first", 1]
    assert RUNS == ["first"]


async def test_start_existing_completed_id_returns_the_old_result() -> None:
    async with memory_engine(reg) as engine:
        await (await engine.start(wf_echo, "once", id="ec-idem-done")).result(timeout=2)
        again = await engine.start(wf_echo, "twice", id="ec-idem-done")
        assert await again.result(timeout=2) == "once"
    assert RUNS == ["once"]


async def test_start_existing_id_with_different_workflow_raises_and_leaves_it_untouched() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_wait, "mine", id="ec-exists")
        await wait_status(engine, "ec-exists", "waiting")
        before = journal_keys(await engine.journal("ec-exists"))
        with pytest.raises(durable.WorkflowExistsError) as info:
            await engine.start(wf_other, "theirs", id="ec-exists")
        assert isinstance(info.value, durable.DurableError)
        assert journal_keys(await engine.journal("ec-exists")) == before
        assert await engine.status("ec-exists") == "waiting"
        await engine.signal("ec-exists", "go", "ok")
        assert await engine.result("ec-exists", timeout=2) == ["mine", "ok"]


async def test_concurrent_starts_of_one_id_start_it_once() -> None:
    async with memory_engine(reg) as engine:
        handles = await asyncio.gather(*(engine.start(wf_echo, i, id="ec-race-start") for i in range(20)))
        results = {await h.result(timeout=2) for h in handles}
    assert len(results) == 1
    assert len(RUNS) == 1


async def test_many_concurrent_starts_and_signals() -> None:
    async with memory_engine(reg) as engine:
        ids = [f"ec-many-{i}" for i in range(30)]
        await asyncio.gather(*(engine.start(wf_wait, i, id=wid) for i, wid in enumerate(ids)))
        await asyncio.gather(*(engine.signal(wid, "go", wid) for wid in ids))
        results = await asyncio.gather(*(engine.result(wid, timeout=3) for wid in ids))
    assert results == [[i, wid] for i, wid in enumerate(ids)]


# ---------------------------------------------------------------- result(timeout)


async def test_result_timeout_raises_builtin_timeouterror_and_the_workflow_keeps_running() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_wait, "t", id="ec-timeout")
        with pytest.raises(TimeoutError) as info:
            await handle.result(timeout=0.05)
        assert type(info.value) is TimeoutError or not isinstance(info.value, durable.Timeout)
        with pytest.raises(TimeoutError):
            await engine.result("ec-timeout", timeout=0.05)
        assert await engine.status("ec-timeout") == "waiting"
        await engine.signal("ec-timeout", "go", "late")
        assert await handle.result(timeout=2) == ["t", "late"]


async def test_result_of_failed_workflow_is_workflowfailederror_with_cause() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_fail, "it broke", id="ec-fail")
        with pytest.raises(durable.WorkflowFailedError) as info:
            await handle.result(timeout=2)
        assert await engine.status("ec-fail") == "failed"
        with pytest.raises(durable.WorkflowFailedError):
            await engine.result("ec-fail", timeout=2)
    cause = info.value.cause
    assert type(cause) is Boom
    assert cause.args == ("it broke",)


# ---------------------------------------------------------------- status


async def test_status_running_while_an_activity_is_in_flight() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_held, id="ec-running")
        await wait_until(lambda: RUNS == [("held", "x")], what="activity to start")
        assert await engine.status("ec-running") == "running"
        HOLD.set()
        assert await engine.result("ec-running", timeout=2) == "x"
        assert await engine.status("ec-running") == "completed"


async def test_status_waiting_on_a_signal_a_timer_and_a_retry_backoff() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_wait, "s", id="ec-w-signal")
        await engine.start(wf_timer, 30, id="ec-w-timer")
        await engine.start(wf_backoff, id="ec-w-backoff")
        await wait_status(engine, "ec-w-signal", "waiting")
        await wait_status(engine, "ec-w-timer", "waiting")
        await wait_until(lambda: RUNS.count("fail-once") == 1, what="first attempt")
        await wait_status(engine, "ec-w-backoff", "waiting")
        clock.advance(100)
        assert await engine.result("ec-w-backoff", timeout=2) == "second"
        assert await engine.result("ec-w-timer", timeout=2) == "after-sleep"


async def test_status_values_for_finished_workflows() -> None:
    async with memory_engine(reg) as engine:
        await (await engine.start(wf_echo, "c", id="ec-st-done")).result(timeout=2)
        h = await engine.start(wf_fail, "f", id="ec-st-failed")
        with pytest.raises(durable.WorkflowFailedError):
            await h.result(timeout=2)
        await engine.start(wf_wait, "x", id="ec-st-cancelled")
        await wait_status(engine, "ec-st-cancelled", "waiting")
        await engine.cancel("ec-st-cancelled")
        await wait_status(engine, "ec-st-cancelled", "cancelled")
        assert await engine.status("ec-st-done") == "completed"
        assert await engine.status("ec-st-failed") == "failed"


async def test_status_blocked_for_a_workflow_no_process_here_registered() -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_wait, "w", id="ec-unreg")
        await wait_status(engine, "ec-unreg", "waiting")
        journal = journal_keys(await engine.journal("ec-unreg"))
    async with durable.Engine(store, registry=durable.Registry()) as engine:
        assert await engine.status("ec-unreg") == "blocked"
        # a blocked workflow still accepts signals, and nothing was written to its journal
        await engine.signal("ec-unreg", "go", "while blocked")
        assert journal_keys(await engine.journal("ec-unreg")) == journal
        assert await engine.status("ec-unreg") == "blocked"
    async with durable.Engine(store, registry=reg) as engine:
        assert await engine.result("ec-unreg", timeout=2) == ["w", "while blocked"]
    assert RUNS == ["w"]


# ---------------------------------------------------------------- journal


async def test_journal_entries_are_in_position_order_with_decoded_values() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_wait, {"k": (1, 2)}, id="ec-journal")
        await wait_status(engine, "ec-journal", "waiting")
        await engine.signal("ec-journal", "go", [1, "two"])
        await engine.result("ec-journal", timeout=2)
        entries = await engine.journal("ec-journal")
    assert all(isinstance(e, durable.Entry) for e in entries)
    assert [(e.position, e.kind, e.name, e.value) for e in entries] == [
        (0, "call", "ec.record", {"k": (1, 2)}),
        (1, "receive", "go", [1, "two"]),
    ]
    assert type(entries[0].value["k"]) is tuple


async def test_journal_of_a_fresh_workflow_is_a_list() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_other, 1, id="ec-journal-empty")
        await wait_status(engine, "ec-journal-empty", "waiting")
        assert await engine.journal("ec-journal-empty") == []


# ---------------------------------------------------------------- not found


@pytest.mark.parametrize("op", ["status", "result", "journal", "signal", "cancel"])
async def test_unknown_id_raises_workflownotfounderror(op) -> None:
    async with memory_engine(reg) as engine:
        calls = {
            "status": lambda: engine.status("nope"),
            "result": lambda: engine.result("nope", timeout=0.5),
            "journal": lambda: engine.journal("nope"),
            "signal": lambda: engine.signal("nope", "go", 1),
            "cancel": lambda: engine.cancel("nope"),
        }
        with pytest.raises(durable.WorkflowNotFoundError) as info:
            await calls[op]()
    assert isinstance(info.value, durable.DurableError)
    assert "nope" in str(info.value)


# ---------------------------------------------------------------- recovery


async def test_recovery_resumes_a_workflow_waiting_on_a_signal_without_rerunning_steps() -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_wait, "once", id="ec-recover")
        await wait_status(engine, "ec-recover", "waiting")
    async with durable.Engine(store, registry=reg) as engine:
        assert await engine.status("ec-recover") == "waiting"
        await engine.signal("ec-recover", "go", "after restart")
        assert await engine.result("ec-recover", timeout=2) == ["once", "after restart"]
        assert [e.kind for e in await engine.journal("ec-recover")] == ["call", "receive"]
    assert RUNS == ["once"]


async def test_signal_is_durable_once_it_returns() -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_wait, "d", id="ec-durable-signal")
        await wait_status(engine, "ec-durable-signal", "waiting")
        await engine.signal("ec-durable-signal", "go", "kept")
    async with durable.Engine(store, registry=reg) as engine:
        assert await engine.result("ec-durable-signal", timeout=2) == ["d", "kept"]


async def test_recovery_keeps_the_recorded_timer_deadline() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await engine.start(wf_timer, 100, id="ec-timer-recover")
        await wait_status(engine, "ec-timer-recover", "waiting")
    clock.advance(60)
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await wait_status(engine, "ec-timer-recover", "waiting")
        clock.advance(39)
        with pytest.raises(TimeoutError):
            await engine.result("ec-timer-recover", timeout=0.05)
        clock.advance(1)
        assert await engine.result("ec-timer-recover", timeout=2) == "after-sleep"


async def test_entering_the_engine_resumes_due_work_eagerly_without_a_result_call() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await engine.start(wf_timer, 10, id="ec-eager")
        await wait_status(engine, "ec-eager", "waiting")
    clock.advance(20)
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await wait_until(lambda: RUNS == ["after-sleep"], what="recovered workflow to continue")
        await wait_status(engine, "ec-eager", "completed")


async def test_leaving_the_engine_with_an_activity_in_flight_loses_nothing() -> None:
    store = durable.store.MemoryStore()
    engine = durable.Engine(store, registry=reg)
    await engine.__aenter__()
    try:
        await engine.start(wf_held, id="ec-inflight")
        await wait_until(lambda: RUNS == [("held", "x")], what="activity to start")
        exiting = asyncio.ensure_future(engine.__aexit__(None, None, None))
        await asyncio.sleep(0)
        HOLD.set()
        await asyncio.wait_for(exiting, 3)
    finally:
        HOLD.set()
    async with durable.Engine(store, registry=reg) as engine:
        assert await engine.result("ec-inflight", timeout=2) == "x"
        entries = await engine.journal("ec-inflight")
    assert [(e.kind, e.name, e.value) for e in entries] == [("call", "ec.held", "x")]


async def test_an_unregistered_workflow_is_described_as_blocked_with_the_reason_and_resumes_once_registered() -> None:
    store = shared_store()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_wait, "w", id="ec-unreg-reason")
        await wait_status(engine, "ec-unreg-reason", "waiting")
    later = durable.Registry()
    async with durable.Engine(store, registry=later) as engine:
        record = await engine.describe("ec-unreg-reason")
        assert await engine.status("ec-unreg-reason") == record.status == "blocked"
        assert record.blocked_reason is not None
        assert "workflow 'ec.wait' is not registered in this engine's registry" in record.blocked_reason
        stored = await engine.store.get("ec-unreg-reason")
        assert stored.status == "waiting" and stored.blocked_reason is None  # nothing was written
        # registering it in this very engine lets it resume
        later.add(wf_wait)
        await engine.signal("ec-unreg-reason", "go", "now")
        assert await engine.result("ec-unreg-reason", timeout=3) == ["w", "now"]
        record = await engine.describe("ec-unreg-reason")
        assert (record.status, record.blocked_reason) == ("completed", None)
    assert RUNS == ["w"]
