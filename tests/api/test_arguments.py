"""Arguments cross into workflows and activities as decoded copies — DESIGN.md 'Codecs' (the first
run hands the generator the decoded value, exactly what a replay will hand it)."""

from __future__ import annotations

import durable
from durable import activity, call, receive

from .conftest import shared_store, wait_status, wait_until

reg = durable.Registry()


@activity(name="arg.echo")
def echo(value):
    return value


@activity(name="arg.append")
def append_to(items, extra=None):
    items.append("by-activity")
    if extra is not None:
        extra["by"] = "activity"
    return len(items)


@activity(name="arg.append-async")
async def append_async(items):
    items.append("by-async-activity")
    return len(items)


@reg.workflow(name="arg.items")
def wf_items(items, *, options):
    yield receive("go")
    got = yield call(echo, [items, options])
    yield receive("end")
    return [items, options, got]


@reg.workflow(name="arg.shared-with-activities")
def wf_shared():
    items = ["a"]
    extra = {"k": 1}
    n = yield call(append_to, items, extra=extra)
    m = yield call(append_async, items)
    seen = yield call(echo, items)
    return [items, extra, n, m, seen]


@reg.workflow(name="arg.scalars")
def wf_scalars(a, b, c, d, e, *, f):
    got = yield call(echo, [a, b, c, d, e, f])
    return [[a, b, c, d, e, f], got]


async def test_first_run_gets_decoded_arguments_not_the_callers_objects() -> None:
    store = shared_store()
    items, options = [1, 2], {"mode": "fast"}
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_items, items, options=options, id="arg-first")
        items.append(3)  # after start returned: changes nothing of the workflow
        options["mode"] = "slow"
        await engine.signal("arg-first", "go")
        await wait_until(lambda: _has_call(engine, "arg-first"), what="the call recorded")
        await wait_status(engine, "arg-first", "waiting")
        recorded = [e.value for e in await engine.journal("arg-first") if e.kind == "call"]
        assert recorded == [[[1, 2], {"mode": "fast"}]]
    # A restart replays from the stored arguments: the same call, no divergence.
    async with durable.Engine(store, registry=reg) as engine:
        await engine.signal("arg-first", "end")
        result = await engine.result("arg-first", timeout=3)
        assert result == [[1, 2], {"mode": "fast"}, [[1, 2], {"mode": "fast"}]]
        assert await engine.status("arg-first") == "completed"


async def _has_call(engine: durable.Engine, workflow_id: str) -> bool:
    return any(e.kind == "call" for e in await engine.journal(workflow_id))


async def test_an_activity_mutating_its_arguments_does_not_change_the_workflows_objects() -> None:
    store = shared_store()
    async with durable.Engine(store, registry=reg) as engine:
        result = await (await engine.start(wf_shared, id="arg-shared")).result(timeout=3)
        journal = [(e.kind, e.value) for e in await engine.journal("arg-shared")]
    # What a replay computes is what the live run computed: the workflow's list never changed.
    assert result == [["a"], {"k": 1}, 2, 2, ["a"]]
    assert journal == [("call", 2), ("call", 2), ("call", ["a"])]


async def test_scalar_arguments_reach_the_workflow_and_activities_unchanged() -> None:
    async with durable.Engine(shared_store(), registry=reg) as engine:
        handle = await engine.start(wf_scalars, 1, 2.5, "s", b"\x00b", None, f=True, id="arg-scalars")
        assert await handle.result(timeout=3) == [[1, 2.5, "s", b"\x00b", None, True]] * 2
