"""Cancellation — DESIGN.md 'engine.cancel', 'Cancelled', 'Fine points'."""

from __future__ import annotations

import asyncio
import threading

import pytest

import durable
from durable import Retry, activity, call, receive, sleep, uuid

from .conftest import journal_keys, memory_engine, wait_status, wait_until

reg = durable.Registry()
LOG: list = []
SYNC_LOG: list = []  # kept apart: a released worker thread may append after its test ended
SYNC_GATE = threading.Event()


@pytest.fixture(autouse=True)
def _reset():
    LOG.clear()
    SYNC_LOG.clear()
    SYNC_GATE.clear()
    yield
    SYNC_GATE.set()


@activity(name="cx.compensate")
def compensate(what):
    LOG.append(("compensate", what))
    return f"undid {what}"


@activity(name="cx.async-forever", retry=Retry(attempts=1))
async def async_forever():
    LOG.append("async-started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        LOG.append("async-cancelled")
        raise
    return "never"


@activity(name="cx.sync-held", retry=Retry(attempts=1))
def sync_held():
    SYNC_LOG.append("sync-started")
    SYNC_GATE.wait(5)
    SYNC_LOG.append("sync-finished")
    return "late result"


@reg.workflow(name="cx.uncaught")
def wf_uncaught():
    yield receive("never")
    return "not cancelled"


@reg.workflow(name="cx.compensating")
def wf_compensating():
    try:
        yield receive("never")
    except durable.Cancelled:
        undo = yield call(compensate, "order")
        return ["compensated", undo]
    return "not cancelled"


@reg.workflow(name="cx.swallow")
def wf_swallow():
    try:
        yield receive("never")
    except Exception:
        return "swallowed by except Exception"
    return "not cancelled"


@reg.workflow(name="cx.pure-first")
def wf_pure_first():
    yield uuid()
    try:
        yield receive("never")
    except durable.Cancelled:
        return "caught at first wait"
    return "not cancelled"


@reg.workflow(name="cx.sleeping")
def wf_sleeping():
    try:
        yield sleep(3600)
    except durable.Cancelled:
        return "cancelled while sleeping"
    return "slept"


@reg.workflow(name="cx.async-activity")
def wf_async_activity():
    try:
        yield call(async_forever)
    except durable.Cancelled:
        return "cancelled during async activity"
    return "finished"


@reg.workflow(name="cx.sync-activity")
def wf_sync_activity():
    try:
        yield call(sync_held)
    except durable.Cancelled:
        return "cancelled during sync activity"
    return "finished"


@reg.workflow(name="cx.child")
def wf_child():
    yield receive("never")
    return "child done"


@reg.workflow(name="cx.parent")
def wf_parent():
    return (yield call(wf_child))


async def test_cancel_throws_cancelled_uncaught_means_status_cancelled() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_uncaught, id="cx-uncaught")
        await wait_status(engine, "cx-uncaught", "waiting")
        await engine.cancel("cx-uncaught")
        with pytest.raises(durable.Cancelled):
            await handle.result(timeout=2)
        assert await engine.status("cx-uncaught") == "cancelled"
        with pytest.raises(durable.Cancelled):
            await engine.result("cx-uncaught", timeout=2)


async def test_cancelled_caught_by_name_compensates_and_completes() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_compensating, id="cx-compensate")
        await wait_status(engine, "cx-compensate", "waiting")
        await engine.cancel("cx-compensate")
        assert await engine.result("cx-compensate", timeout=2) == ["compensated", "undid order"]
        assert await engine.status("cx-compensate") == "completed"
    assert LOG == [("compensate", "order")]


async def test_bare_except_exception_does_not_swallow_cancellation() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_swallow, id="cx-swallow")
        await wait_status(engine, "cx-swallow", "waiting")
        await engine.cancel("cx-swallow")
        with pytest.raises(durable.Cancelled):
            await engine.result("cx-swallow", timeout=2)
        assert await engine.status("cx-swallow") == "cancelled"


async def test_cancel_right_after_start_is_not_lost() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_pure_first, id="cx-early")
        await engine.cancel("cx-early")
        assert await engine.result("cx-early", timeout=2) == "caught at first wait"


async def test_cancel_right_after_start_uncaught_is_cancelled() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_uncaught, id="cx-early-uncaught")
        await engine.cancel("cx-early-uncaught")
        with pytest.raises(durable.Cancelled):
            await engine.result("cx-early-uncaught", timeout=2)
        assert await engine.status("cx-early-uncaught") == "cancelled"


async def test_cancel_reaches_a_durable_sleep() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_sleeping, id="cx-sleep")
        await wait_status(engine, "cx-sleep", "waiting")
        await engine.cancel("cx-sleep")
        assert await engine.result("cx-sleep", timeout=2) == "cancelled while sleeping"


async def test_cancel_during_async_activity_cancels_the_activity() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_async_activity, id="cx-async")
        await wait_until(lambda: "async-started" in LOG, what="activity to start")
        await engine.cancel("cx-async")
        assert await engine.result("cx-async", timeout=1) == "cancelled during async activity"
        await wait_until(lambda: "async-cancelled" in LOG, what="activity to be cancelled")


async def test_cancel_during_sync_activity_discards_its_late_result() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_sync_activity, id="cx-sync")
        await wait_until(lambda: "sync-started" in SYNC_LOG, what="activity to start")
        await engine.cancel("cx-sync")
        assert await engine.result("cx-sync", timeout=1) == "cancelled during sync activity"
        SYNC_GATE.set()
        await wait_until(lambda: "sync-finished" in SYNC_LOG, what="thread to finish")
        await asyncio.sleep(0.02)
        entries = await engine.journal("cx-sync")
        assert await engine.status("cx-sync") == "completed"
    assert "late result" not in [e.value for e in entries]


async def test_cancelling_a_finished_workflow_does_nothing() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_compensating, id="cx-finished")
        await wait_status(engine, "cx-finished", "waiting")
        await engine.cancel("cx-finished")
        assert await engine.result("cx-finished", timeout=2) == ["compensated", "undid order"]
        journal = journal_keys(await engine.journal("cx-finished"))
        await engine.cancel("cx-finished")
        assert await engine.status("cx-finished") == "completed"
        assert await engine.result("cx-finished", timeout=2) == ["compensated", "undid order"]
        assert journal_keys(await engine.journal("cx-finished")) == journal
    assert LOG == [("compensate", "order")]


async def test_cancelling_a_cancelled_workflow_does_nothing() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_uncaught, id="cx-twice")
        await wait_status(engine, "cx-twice", "waiting")
        await engine.cancel("cx-twice")
        await wait_status(engine, "cx-twice", "cancelled")
        await engine.cancel("cx-twice")
        assert await engine.status("cx-twice") == "cancelled"


async def test_cancel_unknown_id_raises_workflownotfounderror() -> None:
    async with memory_engine(reg) as engine:
        with pytest.raises(durable.WorkflowNotFoundError):
            await engine.cancel("cx-nope")


async def test_cancelling_a_parent_cancels_its_running_children() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_parent, id="cx-parent")
        await wait_status(engine, "cx-parent/0", "waiting")
        await engine.cancel("cx-parent")
        with pytest.raises(durable.Cancelled):
            await engine.result("cx-parent", timeout=2)
        await wait_status(engine, "cx-parent/0", "cancelled")


def test_cancelled_is_a_baseexception_not_an_exception() -> None:
    assert issubclass(durable.Cancelled, BaseException)
    assert not issubclass(durable.Cancelled, Exception)


@reg.workflow(name="cx.gather")
def wf_gather_wait():
    try:
        yield durable.gather(receive("a"), sleep(100))
    except durable.Cancelled:
        return "cancelled during gather"
    return "finished"


async def test_cancel_reaches_a_gather() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_gather_wait, id="cx-gather")
        await wait_status(engine, "cx-gather", "waiting")
        await engine.cancel("cx-gather")
        assert await engine.result("cx-gather", timeout=2) == "cancelled during gather"


@activity(name="cx.always-fails", retry=Retry(attempts=100, initial=50.0, backoff=1.0))
def always_fails():
    LOG.append("attempt")
    raise RuntimeError("nope")


@reg.workflow(name="cx.backoff")
def wf_backoff():
    try:
        yield call(always_fails)
    except durable.Cancelled:
        return "cancelled during backoff"
    return "finished"


async def test_cancel_during_retry_backoff_stops_retrying() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_backoff, id="cx-backoff")
        await wait_until(lambda: LOG == ["attempt"], what="first attempt")
        await wait_status(engine, "cx-backoff", "waiting")
        await engine.cancel("cx-backoff")
        assert await engine.result("cx-backoff", timeout=2) == "cancelled during backoff"
        clock.advance(500)
        await asyncio.sleep(0.02)
    assert LOG == ["attempt"]


@reg.workflow(name="cx.wait-after-cancel")
def wf_wait_after_cancel():
    try:
        yield receive("never")
    except durable.Cancelled:
        ack = yield receive("ack")
        return ["compensated after", ack]
    return "not cancelled"


async def test_cancel_is_delivered_once_and_the_workflow_may_wait_again() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_wait_after_cancel, id="cx-wait-again")
        await wait_status(engine, "cx-wait-again", "waiting")
        await engine.cancel("cx-wait-again")
        await wait_until(lambda: _journal_len(engine, "cx-wait-again", 1), what="cancel to be delivered")
        await wait_status(engine, "cx-wait-again", "waiting")
        await engine.signal("cx-wait-again", "ack", "ok")
        assert await engine.result("cx-wait-again", timeout=2) == ["compensated after", "ok"]
        assert await engine.status("cx-wait-again") == "completed"


async def _journal_len(engine, wid, n):
    return len(await engine.journal(wid)) >= n


@reg.workflow(name="cx.child-compensates")
def wf_child_compensates():
    try:
        yield receive("never")
    except durable.Cancelled:
        yield call(compensate, "child")
        return "child compensated"


@reg.workflow(name="cx.parent-of-compensating")
def wf_parent_of_compensating():
    return (yield call(wf_child_compensates))


async def test_cancelled_child_may_compensate_and_complete() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_parent_of_compensating, id="cx-p2")
        await wait_status(engine, "cx-p2/0", "waiting")
        await engine.cancel("cx-p2")
        with pytest.raises(durable.Cancelled):
            await engine.result("cx-p2", timeout=2)
        assert await engine.result("cx-p2/0", timeout=2) == "child compensated"
        assert await engine.status("cx-p2/0") == "completed"
    assert LOG == [("compensate", "child")]


@reg.workflow(name="cx.message")
def wf_message():
    try:
        yield receive("never")
    except durable.Cancelled as e:
        return [str(e), e.workflow_id]
    return "not cancelled"


async def test_cancelled_says_which_workflow_and_where_it_waited() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_message, id="cx-message")
        await wait_status(engine, "cx-message", "waiting")
        await engine.cancel("cx-message")
        message, workflow_id = await engine.result("cx-message", timeout=2)
        handle = await engine.start(wf_uncaught, id="cx-message-uncaught")
        await wait_status(engine, "cx-message-uncaught", "waiting")
        await engine.cancel("cx-message-uncaught")
        with pytest.raises(durable.Cancelled) as info:
            await handle.result(timeout=2)
    assert workflow_id == "cx-message"
    assert "'cx-message'" in message and "receive('never')" in message and "position 0" in message
    assert "'cx-message-uncaught'" in str(info.value) and info.value.workflow_id == "cx-message-uncaught"
    assert "cx-7" in str(durable.Cancelled(workflow_id="cx-7"))
