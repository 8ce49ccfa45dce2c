"""What every Store must do, checked the same way on each backend."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from durable import WorkflowClosedError, WorkflowNotFoundError
from durable.store import NewWorkflow, Store, StoredEntry, Write
from durable.store.types import CONFLICT, FENCED, OK

NAMES = {"wf"}


async def opened(make_store: Callable[[], Store]) -> Store:
    store = make_store()
    await store.open()
    return store


def new(workflow_id: str, now: float = 0.0, **extra) -> NewWorkflow:  # type: ignore[no-untyped-def]
    return NewWorkflow(workflow_id, "wf", b"args", now, **extra)


def entry(position: int, payload: bytes = b"p", kind: str = "call", name: str = "act") -> StoredEntry:
    return StoredEntry(position, kind, name, b"\x00digest!!" if kind == "call" else b"", False, payload)


async def journal(store: Store, workflow_id: str) -> list[StoredEntry]:
    out: list[StoredEntry] = []
    async for chunk in store.load(workflow_id):
        out.extend(chunk)
    return out


async def claim_one(store: Store, worker: str = "w1", now: float = 1.0):  # type: ignore[no-untyped-def]
    claims = [c for c in await store.claim(worker, NAMES, 10, 30.0, now) if not c.held]
    assert len(claims) == 1, claims
    return claims[0]


async def test_create_is_idempotent_by_id(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        first = await store.create(new("a"))
        again = await store.create(NewWorkflow("a", "other", b"x", 5.0))
        assert first.created and not again.created
        assert (again.record.name, again.record.args, again.record.status) == ("wf", b"args", "running")
    finally:
        await store.close()


async def test_claim_leases_ready_workflows_once(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.register_worker("w2", NAMES, 0.0)
        await store.create(new("a"))
        await store.create(NewWorkflow("b", "unregistered", b"", 0.0))
        claim = await claim_one(store, "w1")
        assert (claim.id, claim.token, claim.attempts, claim.args) == ("a", 1, 1, b"args")
        assert await store.claim("w2", NAMES, 10, 30.0, 1.0) == []
        record = await store.get("a")
        assert record is not None and record.lease_owner == "w1"
    finally:
        await store.close()


async def test_commit_appends_and_fences(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        ok = Write("a", claim.token, "running", 1.0, [entry(1, b"one"), entry(0, b"zero")], touch=False)
        stale = Write("a", claim.token + 5, "running", 1.0, [entry(2)])
        taken = Write("a", claim.token, "running", 1.0, [entry(3), entry(1, b"again")])
        assert await store.commit([ok, stale, taken], 2.0) == [OK, FENCED, CONFLICT]
        assert [(e.position, e.payload) for e in await journal(store, "a")] == [(0, b"zero"), (1, b"one")]
        loaded = (await journal(store, "a"))[0]
        assert (loaded.kind, loaded.name, loaded.digest, loaded.failed) == ("call", "act", b"\x00digest!!", False)
    finally:
        await store.close()


async def test_park_and_wake_by_time(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        park = Write("a", claim.token, "waiting", 100.0, [entry(0)], pending=b"state", release=True)
        assert await store.commit([park], 2.0) == [OK]
        assert await store.claim("w1", NAMES, 10, 30.0, 50.0) == []
        assert await store.next_ready(NAMES) == 100.0
        again = await claim_one(store, now=100.0)
        assert (again.token, again.pending, again.status) == (claim.token + 1, b"state", "waiting")
    finally:
        await store.close()


async def test_signals_are_fifo_poke_and_consumed_once(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        await store.commit([Write("a", claim.token, "waiting", None, release=True)], 2.0)
        first = await store.signal("a", "go", b"1", 3.0)
        second = await store.signal("a", "go", b"2", 3.0)
        await store.signal("a", "other", b"3", 3.0)
        assert first < second
        box = await store.inbox("a")
        assert [(s.name, s.payload) for s in box.signals] == [("go", b"1"), ("go", b"2"), ("other", b"3")]
        claim = await claim_one(store, now=3.0)  # the signal made it ready
        consume = Write("a", claim.token, "running", 3.0, [entry(0, b"1", "receive", "go")],
                        consumed=[first], seen_poke=box.poke)
        assert await store.commit([consume], 4.0) == [OK]
        assert [s.payload for s in (await store.inbox("a")).signals] == [b"2", b"3"]
        with pytest.raises(WorkflowNotFoundError):
            await store.signal("nope", "go", b"", 0.0)
    finally:
        await store.close()


async def test_a_poke_after_what_the_engine_saw_keeps_it_ready(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        await store.signal("a", "go", b"late", 1.5)  # arrives while the engine decides to park
        park = Write("a", claim.token, "waiting", None, release=True, seen_poke=claim.poke)
        assert await store.commit([park], 2.0) == [OK]
        assert (await claim_one(store, now=2.0)).id == "a"  # no lost wake-up
    finally:
        await store.close()


async def test_poke_makes_a_waiting_workflow_ready_without_a_signal(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        park = Write("a", claim.token, "waiting", None, release=True, seen_poke=claim.poke)
        assert await store.commit([park], 2.0) == [OK]
        assert await store.claim("w1", NAMES, 10, 30.0, 3.0) == []  # parked with no deadline
        await store.poke("a", 3.0)
        await store.poke("nobody", 3.0)  # an unknown id is no error
        again = await claim_one(store, now=3.0)
        assert again.id == "a" and again.poke > claim.poke
        assert (await store.inbox("a")).signals == []
    finally:
        await store.close()


async def test_held_workflow_poke_is_reported_once(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        await store.signal("a", "go", b"", 1.0)
        held = await store.claim("w1", NAMES, 10, 30.0, 1.0)
        assert [(c.id, c.held, c.token) for c in held] == [("a", True, claim.token)]
        assert await store.claim("w1", NAMES, 10, 30.0, 1.0) == []
    finally:
        await store.close()


async def test_finished_workflows_refuse_signals_and_ignore_cancel(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        done = Write("a", claim.token, "completed", None, result=b"42", release=True)
        assert await store.commit([done], 2.0) == [OK]
        with pytest.raises(WorkflowClosedError) as info:
            await store.signal("a", "go", b"", 3.0)
        assert info.value.status == "completed"
        assert await store.cancel("a", 3.0) is False
        record = await store.get("a")
        assert record is not None and (record.status, record.result, record.ready_at) == ("completed", b"42", None)
    finally:
        await store.close()


async def test_cancel_flag_survives_until_delivered(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        assert await store.cancel("a", 1.0) is True
        box = await store.inbox("a")
        assert box.cancel_requested
        # Delivered, but a second cancel came after what the engine saw: it stays.
        await store.cancel("a", 1.5)
        write = Write("a", claim.token, "running", 2.0, clear_cancel=True, seen_poke=box.poke)
        assert await store.commit([write], 2.0) == [OK]
        assert (await store.inbox("a")).cancel_requested
        box = await store.inbox("a")
        write = Write("a", claim.token, "running", 2.0, clear_cancel=True, seen_poke=box.poke)
        await store.commit([write], 2.0)
        assert not (await store.inbox("a")).cancel_requested
    finally:
        await store.close()


async def test_blocked_then_unblocked(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        block = Write("a", claim.token, "blocked", None, release=True, blocked_reason="diverged at 3")
        await store.commit([block], 2.0)
        await store.signal("a", "go", b"still accepted", 2.5)
        assert await store.claim("w1", NAMES, 10, 30.0, 3.0) == []
        record = await store.get("a")
        assert record is not None and (record.status, record.blocked_reason) == ("blocked", "diverged at 3")
        assert await store.unblock(["a"], None, 4.0) == 1
        assert (await claim_one(store, now=4.0)).id == "a"
    finally:
        await store.close()


async def test_children_wake_and_cancel_ride_along_a_write(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("parent"))
        claim = await claim_one(store)
        child = NewWorkflow("parent/0", "wf", b"child-args", 1.0, parent_id="parent")
        write = Write("parent", claim.token, "waiting", None, release=True, creates=[child])
        assert await store.commit([write], 1.0) == [OK]
        record = await store.get("parent/0")
        assert record is not None and (record.parent_id, record.args) == ("parent", b"child-args")
        child_claim = await claim_one(store, now=1.0)
        assert child_claim.parent_id == "parent"
        finish = Write("parent/0", child_claim.token, "completed", None, result=b"r", release=True, wake=["parent"])
        await store.commit([finish], 2.0)
        assert (await claim_one(store, now=2.0)).id == "parent"
    finally:
        await store.close()


async def test_continue_as_new_resets_journal_and_keeps_inbox(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        await store.commit([Write("a", claim.token, "running", 1.0, [entry(0), entry(1)])], 1.0)
        await store.signal("a", "later", b"kept", 1.0)
        again = Write("a", claim.token, "running", 1.0, [entry(2)], new_run=b"next-args")
        assert await store.commit([again], 2.0) == [OK]
        record = await store.get("a")
        assert record is not None and (record.run, record.args) == (1, b"next-args")
        assert await journal(store, "a") == []
        assert [s.payload for s in (await store.inbox("a")).signals] == [b"kept"]
    finally:
        await store.close()


async def test_long_journals_stream_in_order(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        claim = await claim_one(store)
        writes = [Write("a", claim.token, "running", 1.0, [entry(p, str(p).encode()) for p in range(s, s + 500)])
                  for s in range(0, 5000, 500)]
        assert set(await store.commit(writes, 1.0)) == {OK}
        chunks = [len(c) async for c in store.load("a")]
        assert len(chunks) > 1 and sum(chunks) == 5000
        assert [e.payload for e in await journal(store, "a")] == [str(p).encode() for p in range(5000)]
    finally:
        await store.close()


async def test_expired_lease_is_taken_over_and_the_old_owner_fenced(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.register_worker("w2", NAMES, 0.0)
        await store.create(new("a"))
        [stuck] = await store.claim("w1", NAMES, 1, 0.05, 1.0)
        deadline = time.monotonic() + 5
        taken = []
        while not taken and time.monotonic() < deadline:  # poll: the lease runs out in 50 ms
            taken = await store.claim("w2", NAMES, 1, 30.0, 1.0)
        assert [c.token for c in taken] == [stuck.token + 1]
        late = Write("a", stuck.token, "running", 1.0, [entry(0)])
        assert await store.commit([late], 2.0) == [FENCED]
        assert await journal(store, "a") == []
    finally:
        await store.close()


async def test_unregistered_worker_leases_return_to_the_pool(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.create(new("a"))
        await claim_one(store, "w1")
        await store.unregister_worker("w1")
        await store.register_worker("w2", NAMES, 0.0)
        claim = await claim_one(store, "w2", now=time.time() + 1)
        assert (claim.id, claim.attempts) == ("a", 1)  # a clean stop is not a crash
        assert await store.live_names() == NAMES
    finally:
        await store.close()


@pytest.mark.parametrize("workflow_id", [
    "quote ' \" ; DROP TABLE workflows; --", "nul\x00inside", "rtl \u202egnp.exe", "emoji 🧾", "x" * 1999,
])
async def test_hostile_ids_and_names_round_trip(make_store, workflow_id: str) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", {workflow_id[:500]}, 0.0)
        await store.create(NewWorkflow(workflow_id, workflow_id[:500], b"", 0.0))
        record = await store.get(workflow_id)
        assert record is not None and (record.id, record.name) == (workflow_id, workflow_id[:500])
        [claim] = await store.claim("w1", {workflow_id[:500]}, 1, 30.0, 1.0)
        signal_name = workflow_id[:900]
        await store.signal(workflow_id, signal_name, b"\x00\xff", 1.0)
        box = await store.inbox(workflow_id)
        assert [(s.name, s.payload) for s in box.signals] == [(signal_name, b"\x00\xff")]
        write = Write(workflow_id, claim.token, "running", 1.0, [entry(0, b"v", "receive", signal_name)])
        assert await store.commit([write], 1.0) == [OK]
        assert [(e.kind, e.name) for e in await journal(store, workflow_id)] == [("receive", signal_name)]
    finally:
        await store.close()


async def test_ids_over_the_stated_limit_are_refused(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        with pytest.raises(ValueError, match="limit is 2,000 bytes"):
            await store.create(new("x" * 10_000))
        with pytest.raises(ValueError, match="lone surrogate"):
            await store.create(new("bad \ud800"))
        assert await store.get("x" * 10_000) is None
    finally:
        await store.close()


async def test_meta_first_writer_wins(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        assert await store.get_meta("k") is None
        assert await store.set_meta("k", b"one") == b"one"
        assert await store.set_meta("k", b"two") == b"one"
        assert await store.set_meta("k", b"three", replace=True) == b"three"
    finally:
        await store.close()


async def test_list_pages_by_id(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        for i in range(5):
            await store.create(new(f"w{i}"))
        first = await store.list(limit=2)
        rest = await store.list(after=first[-1].id, limit=10)
        assert [r.id for r in first + rest] == [f"w{i}" for i in range(5)]
        assert [r.id for r in await store.list(status="completed")] == []
    finally:
        await store.close()


async def test_append_only_writes_are_fenced_like_the_others(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        for workflow_id in ("a", "b"):
            await store.create(new(workflow_id))
        claims = {c.id: c for c in await store.claim("w1", NAMES, 10, 30.0, 1.0)}
        a, b = claims["a"].token, claims["b"].token

        def append(workflow_id: str, token: int, *entries: StoredEntry) -> Write:
            return Write(workflow_id, token, "running", 1.0, list(entries), touch=False)

        assert await store.commit([append("a", a + 1, entry(0))], 1.0) == [FENCED]  # alone
        assert await store.commit([append("a", a, entry(0, b"first"))], 1.0) == [OK]
        assert await store.commit([append("a", a, entry(0, b"again"))], 1.0) == [CONFLICT]
        # Together, as group commit batches them: one stale, one good, one taken position.
        batch = [append("a", a, entry(1)), append("b", b + 7, entry(0)), append("b", b, entry(0))]
        assert await store.commit(batch, 1.0) == [OK, FENCED, OK]
        taken = [append("a", a, entry(2)), append("b", b, entry(0, b"dup"))]
        assert await store.commit(taken, 1.0) == [OK, CONFLICT]
        # After the lease is given up, an append with the old token is refused.
        assert await store.commit([Write("a", a, "waiting", None, release=True)], 1.0) == [OK]
        assert await store.commit([append("a", a, entry(3))], 1.0) == [FENCED]
        assert [(e.position, e.payload) for e in await journal(store, "a")] == [(0, b"first"), (1, b"p"), (2, b"p")]
        assert [(e.position, e.payload) for e in await journal(store, "b")] == [(0, b"p")]
    finally:
        await store.close()


async def test_payloads_page_through_everything_once(make_store) -> None:  # type: ignore[no-untyped-def]
    """Key rotation pages with `after = page[-1].where`: every payload is seen exactly once, whatever the
    page size, including pages that end inside a workflow's columns or at the edge between tables."""
    store = await opened(make_store)
    try:
        await store.register_worker("w1", NAMES, 0.0)
        await store.set_meta("m1", b"meta")
        await store.set_meta("m2", b"meta")
        count = 400
        for i in range(count):
            await store.create(new(f"w{i:03}"))
        claims = await store.claim("w1", NAMES, count, 30.0, 1.0)
        assert len(claims) == count
        writes, signalled, written = [], [], 2 + count  # the meta keys and every workflow's args
        for c in sorted(claims, key=lambda c: c.id):
            i = int(c.id[1:])
            entries = [entry(p, f"{c.id}/{p}".encode()) for p in range(i % 4)]
            written += len(entries)
            if i < 100 and i % 3 == 0:  # finished, and (unusually) with pending left too: all three columns
                writes.append(Write(c.id, c.token, "completed", None, entries, pending=b"p", result=b"r",
                                    release=True))
                written += 2
            elif i < 100 and i % 3 == 1:  # parked, to receive signals
                writes.append(Write(c.id, c.token, "waiting", None, entries, pending=b"p", release=True))
                signalled.append(c.id)
                written += 1
            else:  # args only, still leased: a long run of one-column rows from w100 on
                writes.append(Write(c.id, c.token, "running", 1.0, entries))
        assert set(await store.commit(writes, 1.0)) == {OK}
        for n, workflow_id in enumerate(signalled):
            for _ in range(n % 3):
                await store.signal(workflow_id, "go", workflow_id.encode(), 2.0)
                written += 1

        everything = await store.payloads(None, 10**9)
        wheres = [p.where for p in everything]
        assert len(everything) == written and len(set(wheres)) == written and wheres == sorted(wheres)
        for limit in (1, 7, 100):
            seen, sizes, after = [], [], None
            while page := await store.payloads(after, limit):
                seen.extend(page)
                sizes.append(len(page))
                after = page[-1].where
            assert all(size == limit for size in sizes[:-1]) and sizes[-1] <= limit, f"limit {limit}: {sizes}"
            assert [p.where for p in seen] == wheres, f"limit {limit}: {len(seen)} of {written} seen"
            assert [p.data for p in seen] == [p.data for p in everything]

        after, replaced = None, 0
        while page := await store.payloads(after, 7):  # swapping as it goes, as `durable reencode` does
            replaced += await store.replace_payloads([(p, p.data + b"'") for p in page])
            after = page[-1].where
        assert replaced == written
        rotated = await store.payloads(None, 10**9)
        assert [(p.where, p.data) for p in rotated] == [(p.where, p.data + b"'") for p in everything]
        assert await store.replace_payloads([(everything[0], b"stale")]) == 0
    finally:
        await store.close()
