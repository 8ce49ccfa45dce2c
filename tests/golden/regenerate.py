"""Record the golden journals from the example workflows into tests/golden/.

    python tests/golden/regenerate.py [DIRECTORY]

Golden journals stand for runs recorded by *older* code: regenerate them only
when a change is meant to break compatibility (and then old runs need a
migration plan), never to make a failing replay test pass. Recording uses a
memory store and a virtual clock starting at 2024-01-01 UTC, so the files
are stable from one regeneration to the next.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import durable  # noqa: E402
from durable.testing.export import export_workflow  # noqa: E402


def load_examples() -> dict[str, Any]:
    """The example modules, imported by their file names (as golden failure records name them)."""
    examples = str(ROOT / "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    return {name: importlib.import_module(name) for name in ("order_saga", "email_loop", "approval")}


async def _until(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def _waiting_with(engine: durable.Engine, workflow_id: str, entries: int) -> None:
    async def ready() -> bool:
        return (await engine.status(workflow_id) == "waiting"
                and len(await engine.journal(workflow_id)) == entries)

    await _until(ready, f"{workflow_id} to wait with {entries} entries")


Scenario = Callable[[durable.Engine, durable.VirtualClock, dict[str, Any]], Awaitable[tuple[str, Any]]]


async def shipped(engine: durable.Engine, clock: durable.VirtualClock, ex: dict[str, Any]) -> tuple[str, Any]:
    saga = ex["order_saga"].order_saga
    await (await engine.start(saga, "o-17", ["book", "lamp"], 4200, id="order-o-17")).result(timeout=5)
    return "order-o-17", saga


async def declined(engine: durable.Engine, clock: durable.VirtualClock, ex: dict[str, Any]) -> tuple[str, Any]:
    saga = ex["order_saga"].order_saga
    await (await engine.start(saga, "o-18", ["piano"], 950_000, id="order-o-18")).result(timeout=5)
    return "order-o-18", saga


async def ship_failed(engine: durable.Engine, clock: durable.VirtualClock, ex: dict[str, Any]) -> tuple[str, Any]:
    saga = ex["order_saga"].order_saga
    await (await engine.start(saga, "o-19", ["fragile-vase"], 1200, id="order-o-19")).result(timeout=5)
    return "order-o-19", saga


async def emails_sent(engine: durable.Engine, clock: durable.VirtualClock, ex: dict[str, Any]) -> tuple[str, Any]:
    loop = ex["email_loop"].email_loop
    await (await engine.start(loop, "ann@example.com", 3, id="drip-ann")).result(timeout=5)
    return "drip-ann", loop


async def emails_in_flight(engine: durable.Engine, clock: durable.VirtualClock,
                           ex: dict[str, Any]) -> tuple[str, Any]:
    loop = ex["email_loop"].email_loop
    await engine.start(loop, "bob@example.com", 4, id="drip-bob")
    await _waiting_with(engine, "drip-bob", 2)
    clock.advance(dt.timedelta(days=7))
    await _waiting_with(engine, "drip-bob", 5)  # week 2 sent, sleeping again
    return "drip-bob", loop


async def unsubscribed(engine: durable.Engine, clock: durable.VirtualClock, ex: dict[str, Any]) -> tuple[str, Any]:
    loop = ex["email_loop"].email_loop
    handle = await engine.start(loop, "cy@example.com", 4, id="drip-cy")
    await _waiting_with(engine, "drip-cy", 2)
    await engine.signal("drip-cy", "unsubscribe")
    await handle.result(timeout=5)
    return "drip-cy", loop


async def approved(engine: durable.Engine, clock: durable.VirtualClock, ex: dict[str, Any]) -> tuple[str, Any]:
    flow = ex["approval"].approval
    handle = await engine.start(flow, "req-1", 25_000, "ann", id="approval-req-1")
    await engine.signal("approval-req-1", "decision", {"approve": True, "by": "ann"})
    await handle.result(timeout=5)
    return "approval-req-1", flow


async def expired(engine: durable.Engine, clock: durable.VirtualClock, ex: dict[str, Any]) -> tuple[str, Any]:
    flow = ex["approval"].approval
    handle = await engine.start(flow, "req-2", 90_000, "bob", id="approval-req-2")
    await _waiting_with(engine, "approval-req-2", 1)
    clock.advance(dt.timedelta(days=2))
    await handle.result(timeout=5)
    return "approval-req-2", flow


async def awaiting_decision(engine: durable.Engine, clock: durable.VirtualClock,
                            ex: dict[str, Any]) -> tuple[str, Any]:
    flow = ex["approval"].approval
    await engine.start(flow, "req-3", 5_000, "cy", id="approval-req-3")
    await _waiting_with(engine, "approval-req-3", 1)
    return "approval-req-3", flow


SCENARIOS: dict[str, Scenario] = {
    "order_saga-shipped": shipped,
    "order_saga-declined": declined,
    "order_saga-ship-failed": ship_failed,
    "email_loop-sent": emails_sent,
    "email_loop-in-flight": emails_in_flight,
    "email_loop-unsubscribed": unsubscribed,
    "approval-approved": approved,
    "approval-expired": expired,
    "approval-awaiting-decision": awaiting_decision,
}


async def record(directory: Path) -> list[Path]:
    """Run every scenario on a fresh memory engine and export its journal to `directory`."""
    examples = load_examples()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    here = os.getcwd()
    os.chdir(ROOT)  # source lines in the exports read "examples/x.py:N"
    try:
        for name, scenario in SCENARIOS.items():
            # Timers fire only when a scenario moves the clock (or a result() waits on them).
            clock = durable.VirtualClock(START, skip_when_idle=name not in ("email_loop-in-flight",
                                                                            "approval-expired"))
            async with durable.Engine("memory:", clock=clock) as engine:
                workflow_id, fn = await scenario(engine, clock, examples)
                text = await export_workflow(engine, workflow_id, fn=fn)
            path = directory / f"{name}.jsonl"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    finally:
        os.chdir(here)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN
    for path in asyncio.run(record(target)):
        print(f"wrote {path}")
