"""The engine with compression and encryption on: what the store holds, rotation, tampering."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

import durable
from durable import Registry, Retry, activity, call, receive
from durable.codecs import AESGCMCodec, JsonSerializer, Pipeline, ZlibCodec
from durable.store import MemoryStore

CARD = "4111-1111-1111-1111"
K1 = bytes(range(32))
K2 = bytes(range(64, 96))
HEADER_K1 = b"\x05j+z+a\x01\x02k1"
HEADER_K2 = b"\x05j+z+a\x01\x02k2"

registry = Registry()


@activity(name="charge")
def charge(card: str, cents: int) -> dict:
    return {"receipt": f"receipt for {card}", "cents": cents}


@activity(name="verify", retry=Retry(attempts=1))
def verify(card: str) -> None:
    raise ValueError(f"card {card} declined")


@registry.workflow(name="order")
def order(card: str, cents: int):  # type: ignore[no-untyped-def]
    receipt = yield call(charge, card, cents)
    try:
        yield call(verify, card)
        verdict = "verified"
    except durable.ActivityError as exc:
        verdict = exc.message
    approver = yield receive("approve")
    return {"receipt": receipt, "verdict": verdict, "approver": approver}


@registry.workflow(name="doomed")
def doomed(card: str):  # type: ignore[no-untyped-def]
    yield call(charge, card, 1)
    raise RuntimeError(f"cannot ship to the holder of {card}")


@registry.workflow(name="twice")
def twice(card: str):  # type: ignore[no-untyped-def]
    first = yield call(charge, card, 5)
    yield receive("go")
    second = yield call(charge, card, 5)
    return [first, second]


def codecs(**keys: bytes) -> list[Any]:
    return [ZlibCodec(min_size=0), AESGCMCodec(keys or {"k1": K1})]


def engine(store: Any, **keys: bytes) -> durable.Engine:
    return durable.Engine(store, codecs=codecs(**keys), registry=registry)


async def wait_status(eng: durable.Engine, workflow_id: str, status: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = await eng.status(workflow_id)
        if seen == status:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"workflow {workflow_id!r}: expected {status!r}, last saw {seen!r}")


def stored_values(store: MemoryStore) -> Iterator[Any]:
    """Every value the memory store keeps, walked through its rows, entries, inboxes and meta."""

    def walk(value: Any) -> Iterator[Any]:
        if isinstance(value, (bytes, bytearray, str)):
            yield value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from walk(k)
                yield from walk(v)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for v in value:
                yield from walk(v)
        elif hasattr(value, "__slots__") or hasattr(value, "__dict__"):
            names = getattr(value, "__slots__", None) or vars(value)
            for name in names:
                yield from walk(getattr(value, name, None))

    for row in store._rows.values():
        yield from walk(row)
    yield from walk(store._meta)


async def test_a_secret_never_reaches_the_store() -> None:
    async with engine("memory:") as eng:
        await eng.start(order, CARD, 4200, id="order-1")
        await eng.signal("order-1", "note", f"left unread: {CARD}")  # stays in the inbox
        await eng.signal("order-1", "approve", f"ann, card {CARD}")
        result = await eng.result("order-1", timeout=5)
        await eng.start(doomed, CARD, id="doomed-1")
        with pytest.raises(durable.WorkflowFailedError) as failed:
            await eng.result("doomed-1", timeout=5)
        store = eng.store
        journal = await eng.journal("order-1")

    # The workflow really saw the secret everywhere it was meant to be ...
    assert result == {"receipt": {"receipt": f"receipt for {CARD}", "cents": 4200},
                      "verdict": f"card {CARD} declined", "approver": f"ann, card {CARD}"}
    assert CARD in failed.value.message
    assert [(e.kind, e.name, e.failed) for e in journal] == [
        ("call", "charge", False), ("call", "verify", True), ("receive", "approve", False)]
    # ... and none of it is in any byte or string the store holds.
    assert isinstance(store, MemoryStore)
    held = list(stored_values(store))
    for needle in (CARD, CARD.replace("-", "")):
        assert not [v for v in held if needle in (v if isinstance(v, str) else v.decode("latin-1"))], needle
    # What stays in clear: ids, names, kinds, positions, statuses, and the chain header.
    row = store._rows["order-1"]
    assert (row.id, row.name, row.status) == ("order-1", "order", "completed")
    assert [(p, e.kind, e.name) for p, e in sorted(row.journal.items())] == [
        (0, "call", "charge"), (1, "call", "verify"), (2, "receive", "approve")]
    assert [s.name for s in row.inbox] == ["note"]
    payloads = [row.args, row.result, row.inbox[0].payload, *(e.payload for e in row.journal.values()),
                store._rows["doomed-1"].result, store._meta["digest_key"]]
    assert all(p.startswith(HEADER_K1) for p in payloads)
    assert all(p in held for p in payloads)  # the walk above did see every payload


async def test_digests_are_keyed() -> None:
    async with engine("memory:") as eng:
        await eng.start(order, CARD, 4200, id="order-1")
        await wait_status(eng, "order-1", "waiting")
        store = eng.store
        pipeline = eng.pipeline
    row = store._rows["order-1"]
    digest = row.journal[0].digest
    assert digest[:1] == b"\x01"
    assert digest == pipeline.digest((CARD, 4200), {}, workflow_id="order-1")
    # Keyed digests cover the workflow id: the same card in another order does not show as equal.
    assert pipeline.digest((CARD, 4200), {}, workflow_id="order-2")[1:] != digest[1:]
    # A plain hash of the arguments, the thing one could brute-force, is not what is stored.
    unkeyed = Pipeline(JsonSerializer()).digest((CARD, 4200), {})
    assert unkeyed[:1] == b"\x00" and unkeyed[1:] != digest[1:]
    # Another store gets another digest key: digests do not compare across stores.
    async with engine("memory:") as other:
        assert other.pipeline.digest((CARD, 4200), {}, workflow_id="order-1") != digest


async def test_rotation_keeps_in_flight_workflows_deterministic() -> None:
    store = MemoryStore()
    async with engine(store, k1=K1) as eng:
        await eng.start(twice, CARD, id="twice-1")
        await wait_status(eng, "twice-1", "waiting")
    before = store._rows["twice-1"].journal[0]
    assert before.payload.startswith(HEADER_K1)

    # A new process with the rotated configuration: k2 writes, k1 still reads.
    async with engine(store, k2=K2, k1=K1) as eng:
        await eng.signal("twice-1", "go")
        result = await eng.result("twice-1", timeout=5)
        assert await eng.status("twice-1") == "completed"
        journal = await eng.journal("twice-1")
    assert result == [{"receipt": f"receipt for {CARD}", "cents": 5}] * 2
    entries = store._rows["twice-1"].journal
    assert entries[0] == before  # replayed, not rewritten
    assert entries[2].payload.startswith(HEADER_K2)
    assert entries[2].digest == before.digest  # same arguments, same digest, across the rotation
    assert [e.kind for e in journal] == ["call", "receive", "call"]


async def blocked_reason(eng: durable.Engine, workflow_id: str, timeout: float = 5.0) -> str:
    """The reason once the workflow reads as blocked with one (a warm-up block is recorded by the claim after it)."""
    deadline = time.monotonic() + timeout
    while True:
        record = await eng.describe(workflow_id)
        if record.status == "blocked" and record.blocked_reason:
            return record.blocked_reason
        assert time.monotonic() < deadline, f"{workflow_id!r} not blocked with a reason: {record.status!r}"
        await asyncio.sleep(0.005)


async def test_an_engine_without_the_stores_key_opens_and_blocks_the_runs_it_cannot_read() -> None:
    store = MemoryStore()
    async with engine(store, k1=K1) as eng:
        await eng.start(order, CARD, 1, id="order-k1")
        await wait_status(eng, "order-k1", "waiting")
    async with engine(store, k2=K2) as eng:  # the key was lost, or mistyped
        assert "'k1'" in await blocked_reason(eng, "order-k1")
        assert CARD not in await blocked_reason(eng, "order-k1")
        # New runs need the store's digest key for their activity calls: blocked too, saying why.
        await eng.start(order, CARD, 2, id="order-k2")
        assert "digest key could not be read" in await blocked_reason(eng, "order-k2")
    async with engine(store, k2=K2, k1=K1) as eng:  # both keys: everything resumes
        await eng.signal("order-k1", "approve", "alice")
        await eng.signal("order-k2", "approve", "bob")
        assert (await eng.result("order-k1", timeout=5))["approver"] == "alice"
        assert (await eng.result("order-k2", timeout=5))["approver"] == "bob"


async def _two_waiting(store: MemoryStore) -> None:
    async with engine(store) as eng:
        await eng.start(order, CARD, 1, id="order-a")
        await eng.start(order, CARD, 2, id="order-b")
        await wait_status(eng, "order-a", "waiting")
        await wait_status(eng, "order-b", "waiting")


async def _blocked_reason(store: MemoryStore, workflow_id: str) -> str:
    async with engine(store) as eng:
        await eng.signal(workflow_id, "approve", "bob")  # wakes it, so it replays its journal
        await wait_status(eng, workflow_id, "blocked")
    reason = store._rows[workflow_id].blocked_reason
    assert reason is not None
    assert CARD not in reason
    return reason


async def test_a_payload_moved_to_another_workflow_blocks_it() -> None:
    store = MemoryStore()
    await _two_waiting(store)
    a, b = store._rows["order-a"].journal, store._rows["order-b"].journal
    a[0], b[0] = a[0]._replace(payload=b[0].payload), b[0]._replace(payload=a[0].payload)
    reason = await _blocked_reason(store, "order-a")
    assert "'k1'" in reason and "position 0" in reason


async def test_a_payload_moved_to_another_position_blocks_it() -> None:
    store = MemoryStore()
    await _two_waiting(store)
    journal = store._rows["order-a"].journal
    journal[0] = journal[0]._replace(payload=journal[1].payload, failed=True)
    reason = await _blocked_reason(store, "order-a")
    assert "'k1'" in reason and "position 0" in reason


async def test_flipping_the_failed_flag_blocks_it() -> None:
    # Otherwise a recorded failure could be handed to the workflow as the activity's result.
    store = MemoryStore()
    await _two_waiting(store)
    journal = store._rows["order-a"].journal
    assert journal[1].failed
    journal[1] = journal[1]._replace(failed=False)
    reason = await _blocked_reason(store, "order-a")
    assert "'k1'" in reason and "position 1" in reason


async def test_swapped_arguments_block_the_workflow() -> None:
    store = MemoryStore()
    await _two_waiting(store)
    a, b = store._rows["order-a"], store._rows["order-b"]
    a.args, b.args = b.args, a.args
    reason = await _blocked_reason(store, "order-a")
    assert "'k1'" in reason and "order-a" in reason
