"""An order saga: reserve stock, charge the card, ship; if a step fails, undo the earlier ones.

Run it:  python examples/order_saga.py [STORE]   (STORE: "memory:" or a SQLite file)

Each compensation is an activity call like any other, so it is recorded: a
crash in the middle of rolling back resumes the rollback where it stopped,
without refunding twice. Names are given explicitly (`name=`), because
journals record names: moving the code must not break runs in flight.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import durable
from durable import Retry, activity, call, workflow


class PaymentDeclined(Exception):
    """The card was declined: retrying cannot help."""


@activity(name="saga.reserve_stock")
def reserve_stock(order_id: str, items: list[str]) -> str:
    return f"res-{order_id}-{len(items)}"


@activity(name="saga.release_stock")
def release_stock(reservation: str) -> str:
    return f"released {reservation}"


@activity(name="saga.charge_card", retry=Retry(attempts=3, initial=0.1, non_retryable=(PaymentDeclined,)))
def charge_card(order_id: str, cents: int) -> str:
    if cents > 100_000:
        raise PaymentDeclined(f"{cents} cents is over the card limit")
    return f"ch-{order_id}"


@activity(name="saga.refund")
def refund(charge_id: str) -> str:
    return f"refunded {charge_id}"


@activity(name="saga.ship")
def ship(order_id: str, items: list[str]) -> str:
    if "fragile-vase" in items:
        raise RuntimeError("the carrier refuses fragile items")
    return f"trk-{order_id}"


@workflow(name="order_saga")
def order_saga(order_id: str, items: list[str], cents: int) -> Any:
    undo: list[Any] = []  # compensations, in the order their steps succeeded
    try:
        reservation = yield call(reserve_stock, order_id, items)
        undo.append(call(release_stock, reservation))
        charge = yield call(charge_card, order_id, cents)
        undo.append(call(refund, charge))
        tracking = yield call(ship, order_id, items)
    except durable.ActivityError as error:
        for compensation in reversed(undo):
            yield compensation
        return {"order": order_id, "status": "rolled back", "reason": error.message}
    return {"order": order_id, "status": "shipped", "tracking": tracking}


async def main(store: str = "memory:") -> None:
    async with durable.Engine(store) as engine:
        shipped = await engine.start(order_saga, "o-17", ["book", "lamp"], 4200, id="order-o-17")
        declined = await engine.start(order_saga, "o-18", ["piano"], 950_000, id="order-o-18")
        print(await shipped.result())
        print(await declined.result())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory:"))
