"""What only PostgresStore has: the one-statement append path, grouped reads and creates, the
schema migration under concurrency, and liveness tied to a connection."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from durable.store import NewWorkflow, StoredEntry, Write
from durable.store.postgres import PostgresStore
from durable.store.types import CONFLICT, FENCED, OK

NAMES = {"wf"}


def entry(position: int, payload: bytes = b"p") -> StoredEntry:
    return StoredEntry(position, "call", "act", b"digest", False, payload)


async def journal(store: PostgresStore, workflow_id: str) -> list[int]:
    return [e.position async for chunk in store.load(workflow_id) for e in chunk]


async def opened(dsn: str, **options) -> PostgresStore:  # type: ignore[no-untyped-def]
    store = PostgresStore(dsn, **options)
    await store.open()
    return store


async def test_the_append_path_fences_and_refuses_taken_positions(pg_dsn: str) -> None:
    store = await opened(pg_dsn)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(NewWorkflow("a", "wf", b"", 0.0))
        [claim] = await store.claim("w1", NAMES, 10, 30.0, 1.0)
        append = lambda token, *positions: Write("a", token, "running", 1.0,  # noqa: E731
                                                 [entry(p) for p in positions], touch=False)
        assert await store.commit([append(claim.token, 0, 1)], 2.0) == [OK]
        assert await store.commit([append(claim.token + 1, 2)], 2.0) == [FENCED]
        assert await store.commit([append(claim.token, 2, 1)], 2.0) == [CONFLICT]
        assert await journal(store, "a") == [0, 1]  # the conflicting write left nothing behind
        park = Write("a", claim.token, "waiting", None, release=True)
        assert await store.commit([park], 2.0) == [OK]
        assert await store.commit([append(claim.token, 2)], 2.0) == [FENCED]  # released: no lease to write under
        assert await journal(store, "a") == [0, 1]
    finally:
        await store.close()


async def test_several_writes_of_one_workflow_apply_in_order(pg_dsn: str) -> None:
    store = await opened(pg_dsn)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        for wid in ("a", "b"):
            await store.create(NewWorkflow(wid, "wf", b"", 0.0))
        claims = {c.id: c for c in await store.claim("w1", NAMES, 10, 30.0, 1.0)}
        ta, tb = claims["a"].token, claims["b"].token
        writes = [
            Write("a", ta, "running", 1.0, [entry(0)]),
            Write("b", tb, "running", 1.0, [entry(0)], wake=["a"]),
            Write("a", ta, "running", 1.0, [entry(0, b"again")]),  # position 0 is taken by the first
            Write("a", ta, "waiting", None, [entry(1)], release=True, seen_poke=0),
        ]
        assert await store.commit(writes, 2.0) == [OK, OK, CONFLICT, OK]
        assert await journal(store, "a") == [0, 1]
        record = await store.get("a")
        assert record is not None and record.lease_owner is None
        # b's wake poked `a` after what its last write saw: it is ready again, not parked
        assert record.ready_at == 2.0 and (await store.inbox("a")).poke == 1
    finally:
        await store.close()


async def test_concurrent_creates_and_reads_share_statements(pg_dsn: str) -> None:
    store = await opened(pg_dsn)
    try:
        results = await asyncio.gather(*(store.create(NewWorkflow(f"w{i % 50}", "wf", b"", 0.0)) for i in range(200)))
        assert sum(r.created for r in results) == 50  # one create per id wins, the others see it
        records = await asyncio.gather(*(store.get(f"w{i}") for i in range(60)))
        assert [r.id if r else None for r in records] == [f"w{i}" for i in range(50)] + [None] * 10
        boxes = await asyncio.gather(*(store.inbox(f"w{i}") for i in range(50)))
        assert all(b.signals == [] and b.poke == 0 for b in boxes)
    finally:
        await store.close()


async def test_two_stores_opening_at_once_migrate_once(pg_dsn: str) -> None:
    stores = [PostgresStore(pg_dsn) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    for store in stores:
        await store.close()
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT version FROM durable.schema_version") == 1
        await conn.execute("UPDATE durable.schema_version SET version = 99")
        await conn.execute("CREATE SCHEMA app; CREATE TABLE app.workflows (x int)")
    finally:
        await conn.close()
    with pytest.raises(RuntimeError, match="schema version 99, newer than"):
        await PostgresStore(pg_dsn).open()
    with pytest.raises(RuntimeError, match="tables durable did not create"):
        await PostgresStore(pg_dsn, schema="app").open()
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("DELETE FROM durable.schema_version")
    finally:
        await conn.close()
    with pytest.raises(RuntimeError, match="empty schema_version table"):
        await PostgresStore(pg_dsn).open()


async def test_a_dead_connection_frees_its_workers_leases_at_once(pg_dsn: str) -> None:
    first, second = await opened(pg_dsn, watch=False), await opened(pg_dsn, watch=False)
    try:
        await first.register_worker("w1", NAMES, 0.0)
        await second.register_worker("w2", NAMES, 0.0)
        await first.create(NewWorkflow("a", "wf", b"", 0.0))
        [held] = await first.claim("w1", NAMES, 10, 3600.0, 1.0)  # a lease that will not run out
        assert await second.claim("w2", NAMES, 10, 30.0, 1.0) == []
        assert await second.live_names() == NAMES
        first._members.control.terminate()  # what kill -9 does to the connection holding w1's lock
        taken = []
        for _ in range(200):  # the server notices the closed socket within milliseconds
            taken = await second.claim("w2", NAMES, 10, 30.0, 2.0)
            if taken:
                break
            await asyncio.sleep(0.01)
        assert [(c.id, c.token) for c in taken] == [("a", held.token + 1)]
        write = Write("a", held.token, "running", 1.0, [entry(0)], touch=False)
        assert await first.commit([write], 3.0) == [FENCED]  # the old owner's late write
    finally:
        await first.close()
        await second.close()


async def test_a_worker_id_is_one_live_engine_at_a_time(pg_dsn: str) -> None:
    first, second = await opened(pg_dsn), await opened(pg_dsn)
    try:
        await first.register_worker("same", NAMES, 0.0)
        await first.create(NewWorkflow("a", "wf", b"", 0.0, lease_owner="same", lease_s=3600.0))
        with pytest.raises(RuntimeError, match="already in use by a live engine"):
            await second.register_worker("same", NAMES, 0.0)
        first._members.control.terminate()
        await asyncio.sleep(0)  # let the loop see the closed connection
        for _ in range(200):
            try:
                await second.register_worker("same", NAMES, 5.0)  # the previous holder is dead now
                break
            except RuntimeError:
                await asyncio.sleep(0.01)
        [claim] = await second.claim("same", NAMES, 10, 30.0, 5.0)
        assert (claim.id, claim.token) == ("a", 2)
    finally:
        await first.close()
        await second.close()


async def test_one_worker_id_registered_by_several_stores_at_once_is_refused_clearly(pg_dsn: str) -> None:
    stores = [await opened(pg_dsn) for _ in range(4)]
    try:
        outcomes = await asyncio.gather(*(s.register_worker("racer", NAMES, 0.0) for s in stores),
                                        return_exceptions=True)
        assert sum(o is None for o in outcomes) == 1
        for refused in (o for o in outcomes if o is not None):
            assert isinstance(refused, RuntimeError) and "already in use by a live engine" in str(refused)
    finally:
        for store in stores:
            await store.close()


async def test_cross_waking_commits_from_two_stores_do_not_deadlock(pg_dsn: str) -> None:
    stores = [await opened(pg_dsn, watch=False) for _ in range(2)]
    try:
        for i, store in enumerate(stores):
            await store.register_worker(f"w{i}", {f"wf{i}"}, 0.0)
            for j in range(20):
                await store.create(NewWorkflow(f"s{i}-{j}", f"wf{i}", b"", 0.0))
        claims = [await s.claim(f"w{i}", {f"wf{i}"}, 100, 60.0, 1.0) for i, s in enumerate(stores)]

        async def hammer(i: int) -> None:
            mine, theirs = claims[i], [c.id for c in claims[1 - i]]
            for round_ in range(15):
                writes = [Write(c.id, c.token, "running", 1.0, [entry(round_)], wake=theirs[::-1])
                          for c in mine]
                assert set(await stores[i].commit(writes, 2.0)) == {OK}

        await asyncio.wait_for(asyncio.gather(hammer(0), hammer(1)), 60)
        assert await journal(stores[0], "s0-3") == list(range(15))
    finally:
        for store in stores:
            await store.close()


async def test_messages_and_meta_keys_postgres_text_cannot_hold(pg_dsn: str) -> None:
    store = await opened(pg_dsn)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(NewWorkflow("a", "wf", b"", 0.0))
        [claim] = await store.claim("w1", NAMES, 10, 30.0, 1.0)
        block = Write("a", claim.token, "blocked", None, release=True, blocked_reason="bad \x00 byte \ud800")
        assert await store.commit([block], 2.0) == [OK]
        record = await store.get("a")
        assert record is not None and record.blocked_reason == "bad \\x00 byte \\ud800"  # for people: escaped
        with pytest.raises(ValueError, match="without NUL"):
            await store.set_meta("k\x00", b"v")
    finally:
        await store.close()
