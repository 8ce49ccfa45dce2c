"""continue_as_new — DESIGN.md 'Effects' and 'Fine points'."""

from __future__ import annotations

import pytest

import durable
from durable import activity, call, continue_as_new, receive

from .conftest import memory_engine, wait_status

reg = durable.Registry()
LOG: list = []


@pytest.fixture(autouse=True)
def _reset():
    LOG.clear()
    yield


@activity(name="can.tick")
def tick(n):
    LOG.append(n)
    return n


@reg.workflow(name="can.yielded")
def wf_yielded(n, *, limit):
    yield call(tick, n)
    if n < limit:
        yield continue_as_new(n + 1, limit=limit)
        raise AssertionError("continue_as_new must end the run")
    return ["done", n]


@reg.workflow(name="can.returned")
def wf_returned(n, limit=3):
    yield call(tick, n)
    if n < limit:
        return continue_as_new(n + 1, limit)
    return ["done", n]


@reg.workflow(name="can.signals")
def wf_signals(run, seen):
    if run == 0:
        yield receive("go")
    got = yield receive("s")
    seen = seen + [got]
    if run < 2:
        yield continue_as_new(run + 1, seen)
    return seen


@reg.workflow(name="can.waiting")
def wf_waiting(run):
    got = yield receive("next")
    if got == "stop":
        return run
    yield continue_as_new(run + 1)


async def test_yielded_continue_as_new_restarts_with_same_id_and_fresh_journal() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_yielded, 0, limit=3, id="can-yield")
        assert await handle.result(timeout=2) == ["done", 3]
        assert await engine.status("can-yield") == "completed"
        entries = await engine.journal("can-yield")
    assert LOG == [0, 1, 2, 3]
    # only the last run's entries: the journal starts again at position 0
    assert [(e.position, e.kind, e.name, e.value) for e in entries] == [(0, "call", "can.tick", 3)]


async def test_returned_continue_as_new_also_restarts() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_returned, 0, id="can-return")
        assert await handle.result(timeout=2) == ["done", 3]
        entries = await engine.journal("can-return")
    assert LOG == [0, 1, 2, 3]
    assert [(e.position, e.value) for e in entries] == [(0, 3)]


async def test_unconsumed_signals_carry_over_to_the_new_run() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_signals, 0, [], id="can-signals")
        await wait_status(engine, "can-signals", "waiting")
        for payload in ["s1", "s2", "s3"]:
            await engine.signal("can-signals", "s", payload)
        await engine.signal("can-signals", "go")
        assert await engine.result("can-signals", timeout=2) == ["s1", "s2", "s3"]


async def test_entity_style_loop_accepts_signals_across_runs() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_waiting, 0, id="can-entity")
        for _ in range(5):
            await wait_status(engine, "can-entity", "waiting")
            await engine.signal("can-entity", "next", "more")
        await engine.signal("can-entity", "next", "stop")
        assert await handle.result(timeout=2) == 5
        # idempotent start still finds the same workflow
        again = await engine.start(wf_waiting, 0, id="can-entity")
        assert await again.result(timeout=2) == 5


async def test_continue_as_new_survives_a_restart() -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_waiting, 0, id="can-restart")
        await wait_status(engine, "can-restart", "waiting")
        await engine.signal("can-restart", "next", "more")
        await wait_status(engine, "can-restart", "waiting")
    async with durable.Engine(store, registry=reg) as engine:
        await engine.signal("can-restart", "next", "stop")
        assert await engine.result("can-restart", timeout=2) == 1
