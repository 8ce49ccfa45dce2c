"""A human approval: ask, wait up to two days for a decision signal, then act on it.

Run it:  python examples/approval.py [STORE]   (STORE: "memory:" or a SQLite file)

The decision arrives with `engine.signal(id, "decision", {...})`, from a web
handler or `durable signal ID decision '{"approve": true, "by": "ann"}'`.
A signal sent before the workflow waits is kept until it does. The demo's
`VirtualClock` lets the second request expire without waiting two days.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

import durable
from durable import activity, call, receive, workflow


@activity(name="approval.ask")
def ask_approver(approver: str, request_id: str, cents: int) -> str:
    return f"asked {approver} about {request_id}"


@activity(name="approval.tell")
def tell_requester(request_id: str, outcome: str) -> str:
    return f"told {request_id}: {outcome}"


@workflow(name="approval")
def approval(request_id: str, cents: int, approver: str) -> Any:
    yield call(ask_approver, approver, request_id, cents)
    try:
        decision = yield receive("decision", timeout=timedelta(days=2))
    except durable.Timeout:
        yield call(tell_requester, request_id, "expired")
        return {"request": request_id, "status": "expired"}
    status = "approved" if decision.get("approve") else "rejected"
    yield call(tell_requester, request_id, status)
    return {"request": request_id, "status": status, "by": decision.get("by")}


async def main(store: str = "memory:") -> None:
    async with durable.Engine(store, clock=durable.VirtualClock()) as engine:
        approved = await engine.start(approval, "req-1", 25_000, "ann", id="approval-req-1")
        if await approved.status() != "completed":  # run again on the same file: it is done already
            await engine.signal("approval-req-1", "decision", {"approve": True, "by": "ann"})
        print(await approved.result())
        expired = await engine.start(approval, "req-2", 90_000, "bob", id="approval-req-2")
        print(await expired.result())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory:"))
