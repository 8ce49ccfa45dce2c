"""A virtual clock: a workflow that sleeps 30 days finishes in milliseconds; now() follows the clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import durable
from durable import now, receive, sleep

reg = durable.Registry()
MONTH = dt.timedelta(days=30)


@reg.workflow(name="vc.month")
def month_long() -> Any:
    before = yield now()
    yield sleep(MONTH)
    after = yield now()
    return before, after


@reg.workflow(name="vc.reminder")
def reminder() -> Any:
    try:
        return (yield receive("reply", timeout=dt.timedelta(days=3)))
    except durable.Timeout:
        return "no reply"


async def test_a_30_day_sleep_takes_milliseconds_and_now_follows_the_clock(memory_engine, virtual_clock) -> None:
    started = time.perf_counter()
    async with memory_engine(registry=reg) as engine:
        before, after = await (await engine.start(month_long, id="m")).result(timeout=5)
    assert time.perf_counter() - started < 2.0
    assert before == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert after - before == MONTH
    assert virtual_clock.datetime() == after


async def test_a_clock_that_only_moves_when_told(memory_engine) -> None:
    clock = durable.VirtualClock(dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc), skip_when_idle=False)
    async with memory_engine(registry=reg, clock=clock) as engine:
        handle = await engine.start(reminder, id="r")
        deadline = time.monotonic() + 5
        while await handle.status() != "waiting":  # parked on its receive, with a timer 3 days out
            assert time.monotonic() < deadline, "the workflow never started waiting"
            await asyncio.sleep(0.002)
        assert await engine.journal("r") == [] and clock.datetime().day == 1
        clock.advance(dt.timedelta(days=3))
        assert await handle.result(timeout=5) == "no reply"


async def test_works_with_the_sqlite_engine_too(sqlite_engine) -> None:
    async with sqlite_engine(registry=reg) as engine:
        before, after = await (await engine.start(month_long, id="m")).result(timeout=5)
    assert after - before == MONTH
