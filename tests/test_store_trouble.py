"""A store that fails for a while is not the workflow's fault: nothing is blocked, the run goes on."""

from __future__ import annotations

import asyncio

import durable
from durable import call
from durable.store import MemoryStore

reg = durable.Registry()
ran: list[int] = []


@durable.activity(name="trouble.step")
async def step(i: int) -> int:
    ran.append(i)
    return i


@reg.workflow(name="trouble.flow")
def flow(n: int):
    total = 0
    for i in range(n):
        total += yield call(step, i)
    return total


class Flaky(MemoryStore):
    """Fails the 3rd and 4th commits, as a lost connection would."""

    def __init__(self) -> None:
        super().__init__()
        self.commits = 0
        self.failures = 0

    def commit_sync(self, writes, now):  # type: ignore[no-untyped-def]
        self.commits += 1
        if self.commits in (3, 4):
            self.failures += 1
            raise ConnectionError("connection to the database lost")
        return super().commit_sync(writes, now)


async def test_a_failing_store_delays_but_does_not_block() -> None:
    store = Flaky()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(flow, 5, id="t")
        assert await engine.result("t", timeout=15) == sum(range(5))
        assert await engine.status("t") == "completed"
    assert store.failures >= 1
    # A step whose result was lost with a failed commit ran again: once more per failure at most.
    assert sorted(set(ran)) == [0, 1, 2, 3, 4]
    assert max(ran.count(i) for i in range(5)) <= 1 + store.failures
    assert len(ran) == 5 + store.failures


class Refusing(MemoryStore):
    """Commits asynchronously (as SQLite and PostgreSQL do) and refuses, whole, any group holding
    a write of workflow "bad", as a store refuses a name over its limit: before changing anything."""

    commit_sync = None  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[int] = []

    async def commit(self, writes, now):  # type: ignore[no-untyped-def]
        self.groups.append(len(writes))
        if any(w.workflow_id == "bad" and w.entries for w in writes):  # its block, with no entry, passes
            raise ValueError("a name in workflow 'bad' is 1,001 bytes in UTF-8; the limit is 1,000 bytes")
        return MemoryStore.commit_sync(self, writes, now)


async def test_a_write_the_store_refuses_blocks_its_workflow_and_spares_its_group() -> None:
    store = Refusing()
    ran.clear()
    async with durable.Engine(store, registry=reg) as engine:
        # Started together, their first writes share group commits with "bad"'s.
        handles = [await engine.start(flow, 3, id=i) for i in ("good-1", "bad", "good-2")]
        assert await handles[0].result(timeout=10) == 3
        assert await handles[2].result(timeout=10) == 3
        record = await engine.describe("bad")
        for _ in range(200):  # the block is written by a task of its own: poll, with a bound
            if record.status == "blocked":
                break
            await asyncio.sleep(0.01)
            record = await engine.describe("bad")
    assert record.status == "blocked"
    assert "the store refused this workflow's next write" in record.blocked_reason
    assert "1,001 bytes" in record.blocked_reason
    assert max(store.groups) > 1  # the refused write did share a group
