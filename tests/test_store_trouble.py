"""A store that fails for a while is not the workflow's fault: nothing is blocked, the run goes on."""

from __future__ import annotations

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
