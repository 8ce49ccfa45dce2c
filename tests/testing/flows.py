"""Workflows and activities the testing-toolkit tests share (in a registry of their own)."""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

import durable
from durable import Retry, activity, call, gather, now, race, receive, sleep, uuid

reg = durable.Registry()
CALLS: list[Any] = []  # activities append here, so tests can see that replay runs none


class Declined(Exception):
    pass


@activity(name="tt.reserve")
def reserve(order: str) -> str:
    CALLS.append(("reserve", order))
    return f"res-{order}"


@activity(name="tt.charge", retry=Retry(attempts=2, initial=0.01, non_retryable=(Declined,)))
def charge(order: str, cents: int) -> tuple[str, int]:
    CALLS.append(("charge", order, cents))
    if cents > 10_000:
        raise Declined(f"{cents} is over the limit")
    return (f"ch-{order}", cents)


@activity(name="tt.refund")
def refund(receipt: Any) -> None:
    CALLS.append(("refund", receipt))


@activity(name="tt.ship")
async def ship(order: str) -> dict[str, Any]:
    CALLS.append(("ship", order))
    return {"order": order, "at": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)}


@reg.workflow(name="tt.order")
def order(order_id: str, cents: int) -> Any:
    """A saga with a signal, a timeout, a gather, a race and recorded time and uuid."""
    reservation = yield call(reserve, order_id)
    try:
        receipt = yield call(charge, order_id, cents)
    except durable.ActivityError as error:
        yield call(refund, reservation)
        return {"status": "declined", "why": error.message}
    try:
        who = yield receive("approve", timeout=dt.timedelta(days=1))
    except durable.Timeout:
        yield call(refund, receipt)
        return {"status": "expired"}
    yield sleep(dt.timedelta(days=7))
    request = yield uuid()
    shipped, _ = yield gather(call(ship, order_id), call(reserve, f"{order_id}-spare"))
    winner, _ = yield race(receive("hurry"), sleep(60))
    return {"status": "shipped", "by": who, "request": request, "shipped": shipped, "fast": winner == 0,
            "at": (yield now())}


@reg.workflow(name="tt.coin")
def coin_flip() -> Any:
    """Branches on the random module: not deterministic."""
    first = yield call(reserve, "a")
    if random.random() < 0.5:
        second = yield call(reserve, "heads")
    else:
        second = yield call(refund, "tails")
    return [first, second]


@reg.workflow(name="tt.office-hours")
def office_hours() -> Any:
    """Branches on the wall clock: the same in a test, different after a real crash days later."""
    yield call(reserve, "x")
    if dt.datetime.now(dt.timezone.utc).weekday() < 7:  # always true today...
        yield call(reserve, "open")
    return "done"


@reg.workflow(name="tt.stopwatch")
def stopwatch() -> Any:
    """Reads time.time() around a durable sleep."""
    started = time.time()
    yield sleep(60)
    return time.time() - started >= 0


_RUNS = [0]


@reg.workflow(name="tt.module-state")
def module_state() -> Any:
    """Depends on module state that changes from run to run: only replay equivalence can tell."""
    _RUNS[0] += 1
    yield call(reserve, "a")
    if _RUNS[0] % 2:
        yield call(reserve, "odd")
    else:
        yield call(refund, "even")
    return "done"


_CACHE: dict[str, Any] = {}


@reg.workflow(name="tt.module-cache")
def module_cache(order_id: str) -> Any:
    """Caches an activity result in a module dict: a recovery skips the call (hypothesis sees a flaky test)."""
    if order_id in _CACHE:
        reservation = _CACHE[order_id]
    else:
        reservation = _CACHE[order_id] = yield call(reserve, order_id)
    yield call(charge, order_id, 1)
    return reservation
