"""Recovery and replay on a shared MemoryStore — DESIGN.md intro, 'Engine', 'How data flows'."""

from __future__ import annotations

import pytest

import durable
from durable import Retry, activity, call, gather, now, race, receive, sleep, uuid

from .conftest import journal_keys, wait_status, wait_until

reg = durable.Registry()
LOG: list = []


class Declined(Exception):
    pass


@pytest.fixture(autouse=True)
def _reset():
    LOG.clear()
    yield


@activity(name="rp.step")
def step(x):
    LOG.append(x)
    return x


@activity(name="rp.declined", retry=Retry(attempts=2, initial=0.01))
def declined(x):
    LOG.append(("declined", x))
    raise Declined(f"no {x}")


@reg.workflow(name="rp.caught-error")
def wf_caught_error():
    try:
        yield call(declined, "card")
    except durable.ActivityError as e:
        seen = [type(e).__name__, e.type, e.message, e.attempts, type(e.cause).__name__]
    go = yield receive("go")
    return [seen, go]


@reg.workflow(name="rp.caught-timeout")
def wf_caught_timeout():
    try:
        yield receive("never", timeout=5)
        got = "signal"
    except durable.Timeout as e:
        got = type(e).__name__
    go = yield receive("go")
    return [got, go]


@reg.workflow(name="rp.race-then-wait")
def wf_race_then_wait():
    first = yield race(receive("a"), sleep(10))
    yield receive("go")
    later = yield receive("a")
    return [list(first), later]


@reg.workflow(name="rp.gather-partial")
def wf_gather_partial():
    out = yield gather(call(step, "x"), receive("b"), uuid())
    return [out[0], out[1], type(out[2]).__name__]


@reg.workflow(name="rp.bad-yield-caught")
def wf_bad_yield_caught():
    try:
        yield "oops"
    except TypeError:
        pass
    a = yield call(step, "after")
    go = yield receive("go")
    return [a, go]


@reg.workflow(name="rp.child")
def wf_child():
    LOG.append("child body")
    return (yield receive("go"))


@reg.workflow(name="rp.parent")
def wf_parent():
    yield call(step, "parent")
    return (yield call(wf_child))


@reg.workflow(name="rp.pure-in-composites")
def wf_pure_in_composites():
    a = yield gather(uuid(), now(), durable.random())
    b = yield race(uuid(), receive("never"))
    go = yield receive("go")
    return [a, list(b), go]


@reg.workflow(name="rp.no-yield")
def wf_no_yield(x):
    return x * 2
    yield  # pragma: no cover


@reg.workflow(name="rp.raise-first")
def wf_raise_first():
    raise Declined("before any yield")
    yield  # pragma: no cover


@reg.workflow(name="rp.none")
def wf_none():
    yield call(step, None)


@reg.workflow(name="rp.many")
def wf_many(n):
    total = 0
    for i in range(n):
        total += yield call(step, i)
    return total


async def _restart(wid, first_steps, then):
    """Run `first_steps(engine)` on one engine, then `then(engine)` on a fresh one over the same store."""
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await first_steps(engine)
        before = journal_keys(await engine.journal(wid))
    async with durable.Engine(store, registry=reg) as engine:
        result = await then(engine)
        after = journal_keys(await engine.journal(wid))
    assert [k for k in after if k in before] == before  # recorded entries kept as they were
    return result


async def test_caught_activityerror_replays_identically() -> None:
    async def first(engine):
        await engine.start(wf_caught_error, id="rp-err")
        await wait_status(engine, "rp-err", "waiting")

    async def then(engine):
        await engine.signal("rp-err", "go", "g")
        return await engine.result("rp-err", timeout=2)

    result = await _restart("rp-err", first, then)
    expected_type = {f"{__name__}.Declined", f"{__name__}:Declined"}
    seen, go = result
    assert seen[0] == "ActivityError" and seen[1] in expected_type
    assert seen[2:] == ["no card", 2, "Declined"]
    assert go == "g"
    assert LOG == [("declined", "card")] * 2


async def test_caught_timeout_replays_identically() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await engine.start(wf_caught_timeout, id="rp-timeout")
        await wait_status(engine, "rp-timeout", "waiting")
        clock.advance(5)
        await wait_until(lambda: _has_entry(engine, "rp-timeout"), what="timeout to be recorded")
        entries = await engine.journal("rp-timeout")
        assert [e.kind for e in entries] == ["receive"]
        assert isinstance(entries[0].value, durable.Timeout)
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await engine.signal("rp-timeout", "go", 1)
        assert await engine.result("rp-timeout", timeout=2) == ["Timeout", 1]


async def _has_entry(engine, wid):
    return len(await engine.journal(wid)) > 0


async def test_race_winner_replays_even_if_another_member_is_now_ready() -> None:
    clock = durable.VirtualClock(skip_when_idle=False)
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await engine.start(wf_race_then_wait, id="rp-race")
        await wait_status(engine, "rp-race", "waiting")
        clock.advance(10)
        await wait_until(lambda: _has_entry(engine, "rp-race"), what="race to be recorded")
        await engine.signal("rp-race", "a", "A")  # arrives after the timer won
    async with durable.Engine(store, registry=reg, clock=clock) as engine:
        await engine.signal("rp-race", "go")
        assert await engine.result("rp-race", timeout=2) == [[1, None], "A"]


async def test_gather_partly_done_before_restart_does_not_rerun_finished_members() -> None:
    async def first(engine):
        await engine.start(wf_gather_partial, id="rp-gather")
        await wait_status(engine, "rp-gather", "waiting")

    async def then(engine):
        await engine.signal("rp-gather", "b", "B")
        return await engine.result("rp-gather", timeout=2)

    assert await _restart("rp-gather", first, then) == ["x", "B", "UUID"]
    assert LOG == ["x"]


async def test_caught_non_effect_typeerror_replays_identically() -> None:
    async def first(engine):
        await engine.start(wf_bad_yield_caught, id="rp-bad")
        await wait_status(engine, "rp-bad", "waiting")

    async def then(engine):
        await engine.signal("rp-bad", "go", "g")
        return await engine.result("rp-bad", timeout=2)

    assert await _restart("rp-bad", first, then) == ["after", "g"]
    assert LOG == ["after"]


async def test_child_is_not_started_twice_after_a_restart() -> None:
    async def first(engine):
        await engine.start(wf_parent, id="rp-parent")
        await wait_status(engine, "rp-parent/1", "waiting")

    async def then(engine):
        await engine.signal("rp-parent/1", "go", "child result")
        return await engine.result("rp-parent", timeout=2)

    assert await _restart("rp-parent", first, then) == "child result"
    assert LOG.count("parent") == 1


async def test_pure_effects_inside_composites_are_recorded_and_replayed() -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(wf_pure_in_composites, id="rp-pure")
        await wait_status(engine, "rp-pure", "waiting")
        kinds = sorted(e.kind for e in await engine.journal("rp-pure"))
        values = {e.kind: e.value for e in await engine.journal("rp-pure") if e.kind in ("now", "random")}
    assert kinds.count("uuid") == 2 and "now" in kinds and "random" in kinds
    async with durable.Engine(store, registry=reg) as engine:
        await engine.signal("rp-pure", "go", "g")
        (u, t, r), (index, u2), go = await engine.result("rp-pure", timeout=2)
    assert (t, r) == (values["now"], values["random"])
    assert index == 0 and go == "g"


async def test_workflow_without_yield_returns_its_value() -> None:
    async with durable.Engine("memory:", registry=reg) as engine:
        assert await (await engine.start(wf_no_yield, 21, id="rp-noyield")).result(timeout=2) == 42
        assert await engine.journal("rp-noyield") == []


async def test_workflow_raising_before_its_first_yield_fails() -> None:
    async with durable.Engine("memory:", registry=reg) as engine:
        with pytest.raises(durable.WorkflowFailedError) as info:
            await (await engine.start(wf_raise_first, id="rp-raise-first")).result(timeout=2)
        assert await engine.status("rp-raise-first") == "failed"
    assert type(info.value.cause) is Declined


async def test_workflow_returning_none() -> None:
    async with durable.Engine("memory:", registry=reg) as engine:
        assert await (await engine.start(wf_none, id="rp-none")).result(timeout=2) is None
        [entry] = await engine.journal("rp-none")
    assert entry.value is None


async def test_a_few_hundred_steps_run_quickly_and_replay_without_rerunning() -> None:
    store = durable.store.MemoryStore()
    async with durable.Engine(store, registry=reg) as engine:
        assert await (await engine.start(wf_many, 300, id="rp-many")).result(timeout=5) == sum(range(300))
        entries = await engine.journal("rp-many")
    assert [e.position for e in entries] == list(range(300))
    assert LOG == list(range(300))
