"""Child workflows — DESIGN.md 'call' on a workflow, 'ChildWorkflowError', 'Fine points'."""

from __future__ import annotations

import pytest

import durable
from durable import activity, call, gather, now, receive, uuid

from .conftest import memory_engine, wait_status

reg = durable.Registry()
LOG: list = []


class ChildBoom(Exception):
    pass


@pytest.fixture(autouse=True)
def _reset():
    LOG.clear()
    yield


@activity(name="ch.note")
def note(x):
    LOG.append(x)
    return x


@reg.workflow(name="ch.double")
def wf_double(x, *, plus=0):
    y = yield call(note, x)
    return y * 2 + plus


@reg.workflow(name="ch.wait")
def wf_child_wait(tag):
    got = yield receive("go")
    return [tag, got]


@reg.workflow(name="ch.fail")
def wf_child_fail(msg):
    yield uuid()
    raise ChildBoom(msg)


@reg.workflow(name="ch.parent-simple")
def wf_parent_simple():
    return (yield call(wf_double, 20, plus=2))


@reg.workflow(name="ch.parent-at-2")
def wf_parent_at_2():
    yield uuid()
    yield now()
    return (yield call(wf_child_wait, "second"))


@reg.workflow(name="ch.parent-catch")
def wf_parent_catch():
    try:
        yield call(wf_child_fail, "child broke")
    except durable.ChildWorkflowError as e:
        return ["caught", type(e.cause).__name__, list(e.cause.args) if e.cause else None]
    return "no error"


@reg.workflow(name="ch.parent-uncaught")
def wf_parent_uncaught():
    return (yield call(wf_child_fail, "unhandled"))


@reg.workflow(name="ch.parent-gather")
def wf_parent_gather():
    return (yield gather(call(wf_double, 1), call(wf_double, 2), call(note, "act")))


async def test_calling_a_workflow_runs_it_as_a_child_and_returns_its_result() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_parent_simple, id="ch-simple")
        assert await handle.result(timeout=2) == 42
        entries = await engine.journal("ch-simple")
        assert [(e.position, e.kind, e.name, e.value) for e in entries] == [(0, "call", "ch.double", 42)]
        assert await engine.status("ch-simple/0") == "completed"
        assert await engine.result("ch-simple/0", timeout=2) == 42
    assert LOG == [20]


async def test_child_id_is_parent_slash_position_and_can_be_signalled() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_parent_at_2, id="ch-pos")
        await wait_status(engine, "ch-pos/2", "waiting")
        await engine.signal("ch-pos/2", "go", "hello child")
        assert await engine.result("ch-pos", timeout=2) == ["second", "hello child"]
        assert await engine.result("ch-pos/2", timeout=2) == ["second", "hello child"]


async def test_child_failure_is_childworkflowerror_whose_cause_is_the_childs_own_failure() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_parent_catch, id="ch-fail")
        assert await handle.result(timeout=2) == ["caught", "ChildBoom", ["child broke"]]
        assert await engine.status("ch-fail/0") == "failed"
        with pytest.raises(durable.WorkflowFailedError) as info:
            await engine.result("ch-fail/0", timeout=2)
    assert type(info.value.cause) is ChildBoom


async def test_uncaught_child_failure_fails_the_parent() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_parent_uncaught, id="ch-uncaught")
        with pytest.raises(durable.WorkflowFailedError) as info:
            await handle.result(timeout=2)
        assert await engine.status("ch-uncaught") == "failed"
    cause = info.value.cause
    assert isinstance(cause, durable.ChildWorkflowError)
    assert isinstance(cause, durable.DurableError)
    assert type(cause.cause) is ChildBoom
    assert cause.cause.args == ("unhandled",)


async def test_children_in_a_gather_each_get_their_own_position_id() -> None:
    async with memory_engine(reg) as engine:
        handle = await engine.start(wf_parent_gather, id="ch-gather")
        assert await handle.result(timeout=2) == [2, 4, "act"]
        entries = await engine.journal("ch-gather")
        positions = sorted(e.position for e in entries if e.name == "ch.double")
        assert len(positions) == 2
        results = sorted([await engine.result(f"ch-gather/{p}", timeout=2) for p in positions])
    assert results == [2, 4]


async def test_child_can_be_cancelled_by_its_id() -> None:
    async with memory_engine(reg) as engine:
        await engine.start(wf_parent_at_2, id="ch-cancel")
        await wait_status(engine, "ch-cancel/2", "waiting")
        await engine.cancel("ch-cancel/2")
        await wait_status(engine, "ch-cancel/2", "cancelled")
        with pytest.raises(durable.Cancelled):
            await engine.result("ch-cancel/2", timeout=2)
        # the parent learns of it: it does not stay waiting forever
        with pytest.raises((durable.WorkflowFailedError, durable.Cancelled)):
            await engine.result("ch-cancel", timeout=2)


async def test_child_survives_a_restart_and_parent_gets_its_result() -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_parent_at_2, id="ch-restart")
        await wait_status(engine, "ch-restart/2", "waiting")
    async with durable.Engine(store, registry=reg) as engine:
        await engine.signal("ch-restart/2", "go", "after restart")
        assert await engine.result("ch-restart", timeout=2) == ["second", "after restart"]


@reg.workflow(name="ch.parent-big-args")
def wf_parent_big_args(size):
    try:
        yield call(wf_double, "q" * size)
    except durable.ChildWorkflowError as e:
        return ["ChildWorkflowError", e.workflow_id, e.workflow, e.type, type(e.cause).__name__, str(e)]
    except durable.ActivityError as e:
        return ["ActivityError", str(e)]
    return "no error"


async def test_child_arguments_over_the_payload_limit_are_a_childworkflowerror_naming_the_child() -> None:
    async with memory_engine(reg, max_payload=1000) as engine:
        got = await (await engine.start(wf_parent_big_args, 3000, id="ch-big-args")).result(timeout=3)
        with pytest.raises(durable.WorkflowNotFoundError):
            await engine.status("ch-big-args/0")  # nothing was created
        journal = await engine.journal("ch-big-args")
    kind, child_id, name, type_name, cause, message = got
    assert (kind, child_id, name, type_name, cause) == (
        "ChildWorkflowError", "ch-big-args/0", "ch.double", "durable.SerializationError", "SerializationError")
    assert "ch.double" in message and "over the payload limit" in message and "not started" in message
    assert journal[0].failed and isinstance(journal[0].value, durable.ChildWorkflowError)
    assert LOG == []


async def test_a_child_id_over_the_id_limit_is_a_childworkflowerror_and_the_parent_goes_on() -> None:
    # The derived id (parent id + "/0") passes the 2,000-byte limit by one byte.
    parent_id = "p" * 1999
    async with memory_engine(reg) as engine:
        got = await (await engine.start(wf_parent_big_args, 1, id=parent_id)).result(timeout=3)
        assert await engine.status(parent_id) == "completed"
    kind, child_id, name, type_name, cause, message = got
    assert (kind, child_id, name, cause) == ("ChildWorkflowError", parent_id + "/0", "ch.double", "ValueError")
    assert "2,001 bytes" in message and "limit is 2,000 bytes" in message
    assert LOG == []
