"""Next versions of shop_v1's workflow, as a deploy would bring them."""

from __future__ import annotations

from typing import Any

from shop_v1 import charge, reserve

from durable import call, receive
from durable.registry import make_workflow


def _approve_first(order_id: str, cents: int, wait: bool) -> Any:
    reservation = yield call(reserve, order_id)
    who = (yield receive("approve")) if wait else "auto"  # now before the charge: incompatible
    receipt = yield call(charge, order_id, cents)
    return {"reservation": reservation, "receipt": receipt, "by": who}


def _thank_you(order_id: str, cents: int, wait: bool) -> Any:
    reservation = yield call(reserve, order_id)
    receipt = yield call(charge, order_id, cents)
    who = (yield receive("approve")) if wait else "auto"
    yield call(reserve, "thank-you note")  # a new last step: compatible
    return {"reservation": reservation, "receipt": receipt, "by": who}


order = make_workflow(_approve_first, "shop.order")
thank_you = make_workflow(_thank_you, "shop.order")
