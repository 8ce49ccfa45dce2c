"""A workflow module the CLI tests import by name (`shop_v1:order`), and a driver for it.

    python shop_v1.py DB start          start three runs: one finishes, two charge and wait for "approve"
    python shop_v1.py DB resume ID...   run a worker until those runs finish; print their outcomes

Set SHOP_AES_KEY (64 hex digits) to encrypt the store with key id "k1".
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import durable
from durable import activity, call, receive

registry = durable.Registry()


@activity(name="shop.reserve")
def reserve(order_id: str) -> str:
    return f"res-{order_id}"


@activity(name="shop.charge")
def charge(order_id: str, cents: int) -> str:
    return f"ch-{order_id}-{cents}"


@registry.workflow(name="shop.order")
def order(order_id: str, cents: int, wait: bool) -> Any:
    reservation = yield call(reserve, order_id)
    receipt = yield call(charge, order_id, cents)
    who = (yield receive("approve")) if wait else "auto"
    return {"reservation": reservation, "receipt": receipt, "by": who}


def engine(db: str) -> durable.Engine:
    key = os.environ.get("SHOP_AES_KEY")
    codecs = [durable.codecs.AESGCMCodec({"k1": bytes.fromhex(key)})] if key else []
    return durable.Engine(db, registry=registry, codecs=codecs)


async def start(db: str) -> None:
    async with engine(db) as e:
        done = await e.start(order, "o-1", 100, False, id="o-1")
        await done.result(timeout=10)
        for order_id in ("o-2", "o-3"):
            await e.start(order, order_id, 200, True, id=order_id)
        for order_id in ("o-2", "o-3"):
            while await e.status(order_id) != "waiting" or len(await e.journal(order_id)) < 2:
                await asyncio.sleep(0.005)


async def resume(db: str, ids: list[str]) -> None:
    async with engine(db) as e:
        for workflow_id in ids:
            try:
                print(workflow_id, await e.result(workflow_id, timeout=10))
            except durable.Cancelled:
                print(workflow_id, "cancelled")


if __name__ == "__main__":
    db, command, *rest = sys.argv[1:]
    asyncio.run(start(db) if command == "start" else resume(db, rest))
