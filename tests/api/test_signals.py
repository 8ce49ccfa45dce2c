"""Signals: receive order, buffering, closed workflows — DESIGN.md 'receive', 'signal', 'Fine points'."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal
from uuid import UUID

import pytest

import durable
from durable import activity, call, receive
from durable.testing import replay

from .conftest import memory_engine, wait_status, wait_until

reg = durable.Registry()


class Boom(Exception):
    pass


@activity(name="sig.noop")
def noop():
    return None


@reg.workflow(name="sig.collect")
def wf_collect(name, count):
    out = []
    for _ in range(count):
        out.append((yield receive(name)))
    return out


@reg.workflow(name="sig.gate-then-collect")
def wf_gate_then_collect(names):
    yield receive("gate")
    out = []
    for name in names:
        out.append([name, (yield receive(name))])
    return out


@reg.workflow(name="sig.after-call")
def wf_after_call():
    yield call(noop)
    return (yield receive("x"))


@reg.workflow(name="sig.fail")
def wf_fail():
    yield receive("go")
    raise Boom("x")


@reg.workflow(name="sig.timeout-then-receive")
def wf_timeout_then_receive():
    try:
        yield receive("late", timeout=5)
    except durable.Timeout:
        pass
    return (yield receive("late"))


async def test_signals_of_one_name_are_received_oldest_first() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_collect, "n", 3, id="sig-fifo")
        await wait_status(engine, "sig-fifo", "waiting")
        for payload in ["a", "b", "c"]:
            await engine.signal("sig-fifo", "n", payload)
        assert await engine.result("sig-fifo", timeout=2) == ["a", "b", "c"]


async def test_signals_sent_before_the_wait_are_buffered_in_order_per_name() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_gate_then_collect, ["b", "a", "b", "a"], id="sig-buffer")
        await wait_status(engine, "sig-buffer", "waiting")
        await engine.signal("sig-buffer", "a", "a1")
        await engine.signal("sig-buffer", "b", "b1")
        await engine.signal("sig-buffer", "a", "a2")
        await engine.signal("sig-buffer", "b", "b2")
        await engine.signal("sig-buffer", "gate")
        assert await engine.result("sig-buffer", timeout=2) == [["b", "b1"], ["a", "a1"], ["b", "b2"], ["a", "a2"]]


async def test_signal_sent_right_after_start_is_not_lost() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_after_call, id="sig-early")
        await engine.signal("sig-early", "x", "early")
        assert await engine.result("sig-early", timeout=2) == "early"


async def test_signal_payload_defaults_to_none() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_collect, "n", 1, id="sig-none")
        await engine.signal("sig-none", "n")
        assert await engine.result("sig-none", timeout=2) == [None]


async def test_signal_payloads_keep_their_types() -> None:
    payload = {
        "t": (1, 2),
        "when": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc),
        "id": UUID("12345678-1234-5678-1234-567812345678"),
        "raw": b"\x00\xff",
        "amount": Decimal("12.50"),
        "set": {1, 2, 3},
        "big": 2**100,
    }
    async with memory_engine(reg) as engine:
        await engine.start(wf_collect, "n", 1, id="sig-types")
        await engine.signal("sig-types", "n", payload)
        [got] = await engine.result("sig-types", timeout=2)
        [entry] = await engine.journal("sig-types")
    for value in (got, entry.value):
        assert value == payload
        assert {k: type(v) for k, v in value.items()} == {k: type(v) for k, v in payload.items()}


async def _journal_len(engine, wid, n):
    return len(await engine.journal(wid)) >= n


async def test_a_receive_timeout_does_not_consume_a_later_signal() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    async with memory_engine(reg, clock=clock) as engine:
        await engine.start(wf_timeout_then_receive, id="sig-after-timeout")
        await wait_status(engine, "sig-after-timeout", "waiting")
        clock.advance(5)
        await wait_until(lambda: _journal_len(engine, "sig-after-timeout", 1), what="timeout to be recorded")
        await engine.signal("sig-after-timeout", "late", "kept")
        assert await engine.result("sig-after-timeout", timeout=2) == "kept"


async def test_many_concurrent_signals_are_all_delivered_once() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_collect, "n", 50, id="sig-concurrent")
        await asyncio.gather(*(engine.signal("sig-concurrent", "n", i) for i in range(50)))
        got = await engine.result("sig-concurrent", timeout=3)
    assert sorted(got) == list(range(50))


async def test_signal_to_completed_workflow_raises_workflowclosederror() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_collect, "n", 0, id="sig-closed-done")
        await engine.result("sig-closed-done", timeout=2)
        with pytest.raises(durable.WorkflowClosedError) as info:
            await engine.signal("sig-closed-done", "n", 1)
    assert isinstance(info.value, durable.DurableError)
    assert "sig-closed-done" in str(info.value)


async def test_signal_to_failed_workflow_raises_workflowclosederror() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_fail, id="sig-closed-failed")
        await engine.signal("sig-closed-failed", "go")
        with pytest.raises(durable.WorkflowFailedError):
            await engine.result("sig-closed-failed", timeout=2)
        with pytest.raises(durable.WorkflowClosedError):
            await engine.signal("sig-closed-failed", "go")


async def test_signal_to_cancelled_workflow_raises_workflowclosederror() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_collect, "n", 1, id="sig-closed-cancelled")
        await wait_status(engine, "sig-closed-cancelled", "waiting")
        await engine.cancel("sig-closed-cancelled")
        await wait_status(engine, "sig-closed-cancelled", "cancelled")
        with pytest.raises(durable.WorkflowClosedError):
            await engine.signal("sig-closed-cancelled", "n", 1)


async def test_signal_to_unknown_workflow_raises_workflownotfounderror() -> None:
    async with memory_engine(reg) as engine:
        with pytest.raises(durable.WorkflowNotFoundError):
            await engine.signal("sig-never-started", "n", 1)


async def test_blocked_workflow_still_accepts_signals() -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_collect, "n", 2, id="sig-blocked")
        await wait_status(engine, "sig-blocked", "waiting")
    async with durable.Engine(store, registry=durable.Registry()) as engine:
        assert await engine.status("sig-blocked") == "blocked"
        await engine.signal("sig-blocked", "n", "one")
        await engine.signal("sig-blocked", "n", "two")
    async with durable.Engine(store, registry=reg) as engine:
        assert await engine.result("sig-blocked", timeout=2) == ["one", "two"]


@reg.workflow(name="sig.same-name-composites")
def wf_same_name_composites():
    yield receive("gate")
    both = yield durable.gather(receive("x"), receive("x"))
    first = yield durable.race(receive("x"), receive("x"))
    rest = yield receive("x")
    return [both, list(first), rest]


async def test_several_receives_of_one_name_take_signals_oldest_first_by_position() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_same_name_composites, id="sig-same-name")
        await wait_status(engine, "sig-same-name", "waiting")
        for i in range(1, 5):
            await engine.signal("sig-same-name", "x", f"x{i}")
        await engine.signal("sig-same-name", "gate")
        assert await engine.result("sig-same-name", timeout=2) == [["x1", "x2"], [0, "x3"], "x4"]


# ---------------------------------------------------------------- ready at once: signals, deadlines, race order


@reg.workflow(name="sig.zero-timeouts")
def wf_zero_timeouts(count):
    yield receive("gate")
    out = []
    for _ in range(count):
        try:
            out.append((yield receive("a", timeout=0)))
        except durable.Timeout:
            out.append("timeout")
    return out


@reg.workflow(name="sig.race-ready-together")
def wf_race_ready_together():
    yield receive("gate")
    first = yield durable.race(durable.sleep(0), receive("a"))
    second = yield durable.race(receive("a"), durable.sleep(0))
    third = yield receive("a", timeout=0)
    return [list(first), list(second), third]


async def _signal_then_open_gate(engine: durable.Engine, workflow_id: str, payloads: list[str]) -> None:
    await wait_status(engine, workflow_id, "waiting")
    for payload in payloads:
        await engine.signal(workflow_id, "a", payload)
    await engine.signal(workflow_id, "gate")


async def test_a_waiting_signal_is_delivered_rather_than_a_due_timeout() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_zero_timeouts, 3, id="sig-zero-timeouts")
        await _signal_then_open_gate(engine, "sig-zero-timeouts", ["A1", "A2"])
        assert await handle.result(timeout=3) == ["A1", "A2", "timeout"]
        journal = await engine.journal("sig-zero-timeouts")
    assert [e.value for e in journal[1:3]] == ["A1", "A2"]
    assert isinstance(journal[3].value, durable.Timeout)
    # The journal replays to the same outcome.
    assert replay(wf_zero_timeouts, journal, 3).value == ["A1", "A2", "timeout"]


async def test_race_members_ready_at_once_go_to_the_lowest_index_and_losers_consume_nothing() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_race_ready_together, id="sig-race-together")
        await _signal_then_open_gate(engine, "sig-race-together", ["A1", "A2"])
        expected = [[0, None], [0, "A1"], "A2"]
        assert await handle.result(timeout=3) == expected
        journal = await engine.journal("sig-race-together")
    assert replay(wf_race_ready_together, journal).value == expected
