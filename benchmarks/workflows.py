"""The workflows every case runs, with fixed names so subprocesses and journals agree."""

from __future__ import annotations

import asyncio
from typing import Any

from durable import activity, call, now, random, receive, uuid, workflow


@activity(name="bench.inc")
async def inc(i: int) -> int:
    return i + 1


@activity(name="bench.inc_sync")
def inc_sync(i: int) -> int:
    return i + 1


@workflow(name="bench.pure")
def pure(n: int):
    """3·n pure effects: uuid, now, random."""
    for _ in range(n):
        yield uuid()
        yield now()
        yield random()
    return n


@workflow(name="bench.steps")
def steps(n: int):
    """n sequential async activity calls returning a small integer."""
    total = 0
    for i in range(n):
        total = yield call(inc, i)
    return total


@workflow(name="bench.steps_sync")
def steps_sync(n: int):
    """n sequential sync activity calls (run in the engine's thread pool)."""
    total = 0
    for i in range(n):
        total = yield call(inc_sync, i)
    return total


@workflow(name="bench.steps_then_wait")
def steps_then_wait(n: int):
    """n activity calls, then a wait for a signal: the shape of a replayed journal."""
    for i in range(n):
        yield call(inc, i)
    return (yield receive("go"))


# -- recovery (case 5): the worker process hangs at one step and is killed there ---------

RECOVERY: dict[str, Any] = {"hang_at": None, "on_step": None}


@activity(name="bench.recovery_step")
async def recovery_step(i: int) -> int:
    on_step = RECOVERY["on_step"]
    if on_step is not None:
        on_step(i)
    if i == RECOVERY["hang_at"]:
        print("hanging", flush=True)
        await asyncio.sleep(3600)
    return i + 1


@workflow(name="bench.recovery")
def recovery(n: int):
    for i in range(n):
        yield call(recovery_step, i)
    return n
