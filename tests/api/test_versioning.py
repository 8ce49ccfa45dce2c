"""version() and nondeterminism — DESIGN.md 'version', 'What goes wrong', 'Fine points'."""

from __future__ import annotations

import pytest

import durable
from durable import activity, call, receive, version

from .conftest import journal_keys, shared_store, wait_status, wait_until

LOG: list = []


@pytest.fixture(autouse=True)
def _reset():
    LOG.clear()
    yield


@activity(name="vs.step")
def step(x):
    LOG.append(x)
    return x


def _registry(fn, name):
    reg = durable.Registry()
    return reg, reg.workflow(name=name)(fn)


# v1: no marker
def v1(_):
    a = yield call(step, "a")
    go = yield receive("go")
    return [a, go]


# v2: marker inserted *before* recorded steps
def v2_marker_first(_):
    v = yield version("add-b", latest=2)
    a = yield call(step, "a")
    go = yield receive("go")
    if v >= 2:
        yield call(step, "b")
    return [a, go, v]


# v2: marker placed after the point an old run has reached
def v2_marker_after_wait(_):
    a = yield call(step, "a")
    go = yield receive("go")
    v = yield version("tail", latest=3)
    return [a, go, v]


async def _run_old_then_new(old, new, wid):
    """Record a run under `old` until it waits, then finish it under `new` on the same store."""
    store = durable.store.MemoryStore()
    old_wf = _registry(old, "vs.wf")
    async with durable.Engine(store, registry=old_wf[0]) as engine:
        await engine.start(old_wf[1], 0, id=wid)
        await wait_status(engine, wid, "waiting")
        recorded = journal_keys(await engine.journal(wid))
    async with durable.Engine(store, registry=_registry(new, "vs.wf")[0]) as engine:
        await engine.signal(wid, "go", "g")
        result = await engine.result(wid, timeout=2)
        entries = await engine.journal(wid)
    return recorded, result, entries


async def test_new_run_reaching_the_marker_live_gets_latest_and_records_it() -> None:
    reg = durable.Registry()
    wf = reg.workflow(name="vs.fresh")(v2_marker_first)
    async with durable.Engine("memory:", registry=reg) as engine:
        await engine.start(wf, 0, id="vs-fresh")
        await wait_status(engine, "vs-fresh", "waiting")
        await engine.signal("vs-fresh", "go", "g")
        assert await engine.result("vs-fresh", timeout=2) == ["a", "g", 2]
        entries = await engine.journal("vs-fresh")
    assert [(e.position, e.kind) for e in entries] == [(0, "version"), (1, "call"), (2, "receive"), (3, "call")]
    assert entries[0].name == "add-b"
    assert entries[0].value == 2
    assert LOG == ["a", "b"]


async def test_old_run_without_the_marker_gets_zero_and_its_entries_still_line_up() -> None:
    recorded, result, entries = await _run_old_then_new(v1, v2_marker_first, "vs-old")
    assert result == ["a", "g", 0]
    assert LOG == ["a"]  # nothing re-run, and the v>=2 branch not taken
    # the marker took no position: the recorded entries are unchanged
    assert journal_keys(entries)[: len(recorded)] == recorded
    assert "version" not in [e.kind for e in entries]


async def test_old_run_that_reaches_the_marker_live_gets_latest() -> None:
    recorded, result, entries = await _run_old_then_new(v1, v2_marker_after_wait, "vs-tail")
    assert result == ["a", "g", 3]
    assert [e.kind for e in entries] == ["call", "receive", "version"]
    assert LOG == ["a"]


async def test_recorded_version_is_replayed_even_when_latest_moves_on() -> None:
    def old(_):
        v = yield version("c", latest=1)
        go = yield receive("go")
        return [v, go]

    def new(_):
        v = yield version("c", latest=2)
        go = yield receive("go")
        return [v, go]

    store = durable.store.MemoryStore()
    reg1 = durable.Registry()
    wf1 = reg1.workflow(name="vs.moving")(old)
    async with durable.Engine(store, registry=reg1) as engine:
        await engine.start(wf1, 0, id="vs-moving")
        await wait_status(engine, "vs-moving", "waiting")
    reg2 = durable.Registry()
    reg2.workflow(name="vs.moving")(new)
    async with durable.Engine(store, registry=reg2) as engine:
        await engine.signal("vs-moving", "go", 1)
        assert await engine.result("vs-moving", timeout=2) == [1, 1]


# --------------------------------------------------------------- nondeterminism


def nd_original(_):
    a = yield call(step, "a")
    go = yield receive("go")
    return [a, go]


def nd_changed(_):
    try:
        b = yield call(step, "DIFFERENT")
        go = yield receive("go")
    except Exception:  # a NondeterminismError must never be thrown in here
        return "swallowed"
    return [b, go]


@durable.activity(name="vs.other")
def other_step():
    return "other"


def unrelated(_):
    return (yield call(other_step))


async def test_code_change_under_a_recorded_journal_blocks_the_workflow_and_keeps_its_journal() -> None:
    store = durable.store.MemoryStore()
    reg1 = durable.Registry()
    wf = reg1.workflow(name="vs.nd")(nd_original)
    async with durable.Engine(store, registry=reg1) as engine:
        await engine.start(wf, 0, id="vs-nd")
        await wait_status(engine, "vs-nd", "waiting")
        recorded = journal_keys(await engine.journal("vs-nd"))

    reg2 = durable.Registry()
    reg2.workflow(name="vs.nd")(nd_changed)
    other = reg2.workflow(name="vs.unrelated")(unrelated)
    async with durable.Engine(store, registry=reg2) as engine:
        await engine.signal("vs-nd", "go", "g")  # a blocked workflow accepts signals
        await wait_status(engine, "vs-nd", "blocked")
        # other workflows are unaffected
        assert await (await engine.start(other, 0, id="vs-unrelated")).result(timeout=2) == "other"
        assert await engine.status("vs-nd") == "blocked"
        assert journal_keys(await engine.journal("vs-nd")) == recorded
        with pytest.raises(TimeoutError):
            await engine.result("vs-nd", timeout=0.1)
    assert LOG == ["a"]  # the changed code ran nothing

    # deploying the original code again resumes it, without re-running recorded steps
    async with durable.Engine(store, registry=reg1) as engine:
        assert await engine.result("vs-nd", timeout=2) == ["a", "g"]
    assert LOG == ["a"]


async def test_returning_early_while_recorded_entries_remain_is_nondeterminism() -> None:
    def shorter(_):
        return "done early"
        yield  # pragma: no cover - keeps this a generator

    store = durable.store.MemoryStore()
    reg1 = durable.Registry()
    wf = reg1.workflow(name="vs.short")(nd_original)
    async with durable.Engine(store, registry=reg1) as engine:
        await engine.start(wf, 0, id="vs-short")
        await wait_status(engine, "vs-short", "waiting")
    reg2 = durable.Registry()
    reg2.workflow(name="vs.short")(shorter)
    async with durable.Engine(store, registry=reg2) as engine:
        await engine.signal("vs-short", "go", "g")
        await wait_status(engine, "vs-short", "blocked")


def test_nondeterminismerror_carries_its_facts_and_pickles() -> None:
    import pickle

    err = durable.NondeterminismError(
        workflow_id="order-17",
        workflow="order",
        position=4,
        recorded="call(reserve_stock)",
        yielded="sleep(30s)",
        location="orders.py:31",
    )
    assert isinstance(err, durable.DurableError)
    text = str(err)
    for fact in ("order-17", "4", "reserve_stock", "sleep", "orders.py:31"):
        assert fact in text
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is durable.NondeterminismError
    assert str(again) == text
    assert (again.workflow_id, again.position) == ("order-17", 4)


async def test_unblock_resumes_a_blocked_workflow_once_the_code_is_fixed() -> None:
    store = durable.store.MemoryStore()
    reg1 = durable.Registry()
    wf = reg1.workflow(name="vs.unblock")(nd_original)
    async with durable.Engine(store, registry=reg1) as engine:
        await engine.start(wf, 0, id="vs-unblock")
        await wait_status(engine, "vs-unblock", "waiting")
    reg2 = durable.Registry()
    reg2.workflow(name="vs.unblock")(nd_changed)
    async with durable.Engine(store, registry=reg2) as engine:
        await engine.signal("vs-unblock", "go", "g")
        await wait_status(engine, "vs-unblock", "blocked")
        # deploy the fix in this process, then unblock without restarting
        reg2.remove("vs.unblock")
        reg2.workflow(name="vs.unblock")(nd_original)
        await engine.unblock("vs-unblock")
        assert await engine.result("vs-unblock", timeout=2) == ["a", "g"]
    assert LOG == ["a"]


def nd_kind_changed(_):
    yield durable.sleep(1)
    go = yield receive("go")
    return go


async def test_changing_the_kind_of_a_recorded_effect_blocks() -> None:
    store = durable.store.MemoryStore()
    reg1 = durable.Registry()
    wf = reg1.workflow(name="vs.kind")(nd_original)
    async with durable.Engine(store, registry=reg1) as engine:
        await engine.start(wf, 0, id="vs-kind")
        await wait_status(engine, "vs-kind", "waiting")
        recorded = journal_keys(await engine.journal("vs-kind"))
    reg2 = durable.Registry()
    reg2.workflow(name="vs.kind")(nd_kind_changed)
    async with durable.Engine(store, registry=reg2) as engine:
        await engine.signal("vs-kind", "go", "g")
        await wait_status(engine, "vs-kind", "blocked")
        assert journal_keys(await engine.journal("vs-kind")) == recorded


async def test_a_waiting_workflow_whose_code_changed_is_blocked_at_warm_up_without_waiting_for_a_signal() -> None:
    store = shared_store()
    reg1 = durable.Registry()
    wf = reg1.workflow(name="vs.warm")(nd_original)
    async with durable.Engine(store, registry=reg1) as engine:
        await engine.start(wf, 0, id="vs-warm")
        await wait_status(engine, "vs-warm", "waiting")
        recorded = journal_keys(await engine.journal("vs-warm"))

    reg2 = durable.Registry()
    reg2.workflow(name="vs.warm")(nd_changed)
    async with durable.Engine(store, registry=reg2) as engine:  # no signal, no timer: only the warm-up replay
        await wait_status(engine, "vs-warm", "blocked")
        record = await engine.describe("vs-warm")
        assert record.status == "blocked"
        assert "diverged from its journal at position 0" in record.blocked_reason
        assert "call(vs.step)" in record.blocked_reason
        assert journal_keys(await engine.journal("vs-warm")) == recorded

        async def stored_as_blocked() -> bool:  # what another process reading the store sees
            stored = await engine.store.get("vs-warm")
            return stored.status == "blocked" and "diverged" in (stored.blocked_reason or "")

        await wait_until(stored_as_blocked, what="the block to reach the store")
    assert LOG == ["a"]

    # deploying the original code again resumes it
    async with durable.Engine(store, registry=reg1) as engine:
        await engine.signal("vs-warm", "go", "g")
        assert await engine.result("vs-warm", timeout=3) == ["a", "g"]
    assert LOG == ["a"]
