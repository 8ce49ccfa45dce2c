"""A signal matched while its write is in flight is not read back from the store a second time.

Exactly-once delivery holds when a poke (a new signal) lands between the
moment a receive is matched in memory and the commit that consumes the
signal: the store still lists the first signal as unconsumed then. A memory
store whose commits wait at a gate makes that moment happen on cue; the
engine is what is under test.
"""

from __future__ import annotations

import asyncio
import time

import durable
from durable import call, gather, receive
from durable.store import MemoryStore

reg = durable.Registry()
gates: dict[str, asyncio.Event] = {}
finished: set[str] = set()


@durable.activity(name="inflight.wait")
async def wait_for(tag: str) -> str:
    await gates[tag].wait()
    finished.add(tag)
    return tag


@reg.workflow(name="inflight.flow")
def flow():
    yield gather(call(wait_for, "a1"), call(wait_for, "a2"))
    first = yield receive("go")
    second = yield receive("go")
    return [first, second]


class GatedStore(MemoryStore):
    """Commits asynchronously, and wait at `hold` while it is engaged."""

    commit_sync = None  # type: ignore[assignment]  # the engine then awaits commit(), as on SQLite

    def __init__(self) -> None:
        super().__init__()
        self.hold: asyncio.Event | None = None
        self.held = 0

    async def commit(self, writes, now):  # type: ignore[no-untyped-def]
        if self.hold is not None and not self.hold.is_set():
            self.held += 1
            await self.hold.wait()
        return MemoryStore.commit_sync(self, writes, now)


async def _until(predicate, what: str, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


async def test_a_signal_is_not_delivered_twice_when_a_poke_meets_an_inflight_commit() -> None:
    gates.update(a1=asyncio.Event(), a2=asyncio.Event())
    finished.clear()
    store = GatedStore()
    async with durable.Engine(store, registry=reg) as engine:
        await engine.start(flow, id="w")
        await engine.signal("w", "go", "s1")
        store.hold = asyncio.Event()
        gates["a1"].set()
        await _until(lambda: store.held == 1, "a1's commit to reach the gate")
        gates["a2"].set()
        await _until(lambda: "a2" in finished, "a2 to finish")
        await engine.signal("w", "go", "s2")  # pokes the run while a1's commit waits
        store.hold.set()
        assert await engine.result("w", timeout=5) == ["s1", "s2"]
        receives = [e.value for e in await engine.journal("w") if e.kind == "receive"]
        assert receives == ["s1", "s2"]
