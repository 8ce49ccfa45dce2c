"""The engine on PostgreSQL, through `durable.Engine("postgresql://...")`: every effect end to end."""

from __future__ import annotations

import asyncpg

import durable
from durable import Cancelled, Timeout, activity, call, continue_as_new, gather, race, receive, sleep
from durable.store.postgres import PostgresStore

from .conftest import wait_until

reg = durable.Registry()
COMPENSATED: list[str] = []


@activity(name="pg.add")
async def add(a: int, b: int) -> int:
    return a + b


@activity(name="pg.compensate")
def compensate(tag: str) -> str:
    COMPENSATED.append(tag)
    return f"undone {tag}"


@reg.workflow(name="pg.child")
def child(x: int):
    got = yield receive("poke")
    return x * 10 + got


@reg.workflow(name="pg.everything")
def everything(n: int):
    total = 0
    for i in range(n):
        total = yield call(add, total, i)
    yield sleep(0.05)  # a durable timer
    try:
        yield receive("never", timeout=0.05)
    except Timeout:
        timed_out = True
    first = yield receive("go")
    kid = yield call(child, 4)
    pair = yield gather(call(add, 1, 2), call(add, 3, 4))
    winner = yield race(receive("late"), sleep(0.02))
    return {"total": total, "timed_out": timed_out, "first": first, "kid": kid, "pair": pair,
            "winner": winner[0]}


@reg.workflow(name="pg.cancellable")
def cancellable(tag: str):
    kid = None
    try:
        kid = yield call(child, 1)
    except Cancelled:
        return (yield call(compensate, tag))
    return kid


@reg.workflow(name="pg.counter")
def counter(run: int, seen: list):
    got = yield receive("tick")
    seen = seen + [got]
    if run < 2:
        yield continue_as_new(run + 1, seen)
    return seen


async def test_a_workflow_with_every_effect_runs_on_postgres(pg_dsn: str) -> None:
    async with durable.Engine(pg_dsn, registry=reg) as engine:
        assert isinstance(engine.store, PostgresStore)
        handle = await engine.start(everything, 5, id="pg-everything")
        await wait_until(lambda: _waiting_for_go(engine), what="the workflow to wait for 'go'")
        await engine.signal("pg-everything", "go", "first!")
        child_id = await wait_until(lambda: _child_of(engine, "pg-everything"), what="the child workflow")
        await engine.signal(child_id, "poke", 2)
        result = await handle.result(timeout=20)
        assert result == {"total": 10, "timed_out": True, "first": "first!", "kid": 42, "pair": [3, 7],
                          "winner": 1}
        assert await engine.status("pg-everything") == "completed"
        journal = await engine.journal("pg-everything")
        kinds = [e.kind for e in journal]
        assert kinds[:5] == ["call"] * 5 and "sleep" in kinds and "receive" in kinds
        positions = [e.position for e in journal]
        assert positions == sorted(set(positions))  # in order; an abandoned race member leaves a gap
        assert (await engine.journal(child_id))[0].value == 2


async def _waiting_for_go(engine: durable.Engine) -> bool:
    """Past the receive that times out (recorded), and parked."""
    journal = await engine.journal("pg-everything")
    return any(e.name == "never" for e in journal) and await engine.status("pg-everything") == "waiting"


async def _child_of(engine: durable.Engine, parent: str) -> str | None:
    for record in await engine.list():
        if record.parent_id == parent:
            return record.id
    return None


async def test_cancel_reaches_the_workflow_and_its_child(pg_dsn: str) -> None:
    COMPENSATED.clear()
    async with durable.Engine(pg_dsn, registry=reg) as engine:
        handle = await engine.start(cancellable, "order-9", id="pg-cancel")
        child_id = await wait_until(lambda: _child_of(engine, "pg-cancel"), what="the child workflow")
        await wait_until(lambda: _status_is(engine, child_id, "waiting"), what="the child to wait")
        await engine.cancel("pg-cancel")
        assert await handle.result(timeout=20) == "undone order-9"
        assert COMPENSATED == ["order-9"]
        await wait_until(lambda: _status_is(engine, child_id, "cancelled"), what="the child to be cancelled")
        await engine.cancel("pg-cancel")  # cancelling a finished workflow does nothing
        assert await engine.status("pg-cancel") == "completed"


async def test_a_result_awaited_in_another_engine_is_heard_when_it_finishes_not_at_the_next_poll(
        pg_dsn: str) -> None:
    async with durable.Engine(pg_dsn, registry=reg) as worker, \
            durable.Engine(pg_dsn, registry=reg, worker=False, poll_interval=120) as client:
        await client.start(child, 4, id="pg-heard")  # a client creates it; the worker runs it
        await wait_until(lambda: _status_is(worker, "pg-heard", "waiting"), what="the workflow to wait")
        await worker.signal("pg-heard", "poke", 2)
        # The client polls every 120 s: only the store's notification can wake it in time.
        assert await client.result("pg-heard", timeout=5) == 42


async def _status_is(engine: durable.Engine, workflow_id: str, status: str) -> bool:
    return await engine.status(workflow_id) == status


async def test_continue_as_new_keeps_signals_and_restarts_the_journal(pg_dsn: str) -> None:
    async with durable.Engine(pg_dsn, registry=reg) as engine:
        handle = await engine.start(counter, 0, [], id="pg-counter")
        for value in ("a", "b", "c"):  # sent at once: later ones wait in the inbox across runs
            await engine.signal("pg-counter", "tick", value)
        assert await handle.result(timeout=20) == ["a", "b", "c"]
        record = await engine.describe("pg-counter")
        assert record.run == 2
        assert [(e.position, e.kind, e.value) for e in await engine.journal("pg-counter")] == [(0, "receive", "c")]


async def test_a_second_engine_resumes_what_the_first_left(pg_dsn: str) -> None:
    async with durable.Engine(pg_dsn, registry=reg) as engine:
        await engine.start(counter, 0, [], id="pg-resume")
        await wait_until(lambda: _status_is(engine, "pg-resume", "waiting"), what="the workflow to wait")
    async with durable.Engine(pg_dsn, registry=reg) as engine:  # a restart: same database, new process state
        for value in ("x", "y", "z"):
            await engine.signal("pg-resume", "tick", value)
        assert await engine.result("pg-resume", timeout=20) == ["x", "y", "z"]


async def test_the_schema_is_plain_sql_readable(pg_dsn: str) -> None:
    async with durable.Engine(pg_dsn, registry=reg) as engine:
        await engine.start(everything, 2, id="pg-sql")
        await wait_until(lambda: _calls(engine, "pg-sql", 2), what="two recorded calls")
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch("SELECT workflow_id, position, kind, name FROM durable.journal_view "
                                "WHERE workflow_id = 'pg-sql' ORDER BY position LIMIT 2")
        assert [tuple(r) for r in rows] == [("pg-sql", 0, "call", "pg.add"), ("pg-sql", 1, "call", "pg.add")]
        status = await conn.fetchval("SELECT status FROM durable.workflows_view WHERE id = 'pg-sql'")
        assert status in ("running", "waiting")
        assert await conn.fetchval("SELECT version FROM durable.schema_version") == 1
    finally:
        await conn.close()


async def _calls(engine: durable.Engine, workflow_id: str, count: int) -> bool:
    return sum(e.kind == "call" for e in await engine.journal(workflow_id)) >= count
