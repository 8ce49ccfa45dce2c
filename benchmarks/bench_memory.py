"""Case 1: per-step cost on the in-memory store, against a bare generator + orjson loop.

Ours: one workflow of many steps on `Engine("memory:")`, from `start` to its
result, divided by the steps. Floor: a generator yielding `__slots__` effect
objects, a dispatch on their type, the effect done inline, `orjson.dumps` of
the outcome copied into one `bytearray` journal: what any Python engine has
to do. (Keeping one bytes object per entry in a list instead costs ~2 µs more
per step on this VM: fresh memory is expensive here, see PERFORMANCE.md.)
"""

from __future__ import annotations

import asyncio
import uuid as _uuid
from datetime import datetime, timezone
from random import random as _random
from typing import Any

import orjson

import durable

from . import workflows as w
from .available import aes_codec
from .harness import Row, Settings, Target, alternate_async, clock, median

CASE = "1 memory"


class _Uuid:
    __slots__ = ()


class _Now:
    __slots__ = ()


class _Random:
    __slots__ = ()


class _Call:
    __slots__ = ("fn", "args")

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn = fn
        self.args = args


_PURE = {
    _Uuid: _uuid.uuid4,
    _Now: lambda: datetime.now(timezone.utc),
    _Random: _random,
}


def _floor_pure_gen(n: int):
    for _ in range(n):
        yield _Uuid()
        yield _Now()
        yield _Random()


def _floor_calls_gen(n: int, fn: Any):
    total = 0
    for i in range(n):
        total = yield _Call(fn, i)
    return total


def floor_pure(n: int) -> float:
    """Seconds per step of the bare loop over 3·n pure effects."""
    journal = bytearray()
    gen = _floor_pure_gen(n)
    value: Any = None
    start = clock()
    try:
        while True:
            effect = gen.send(value)
            value = _PURE[type(effect)]()
            journal += orjson.dumps(value)
    except StopIteration:
        pass
    return (clock() - start) / (3 * n)


async def floor_calls(n: int, fn: Any, is_async: bool) -> float:
    """Seconds per step of the bare loop calling `fn` inline (awaited if async)."""
    journal = bytearray()
    gen = _floor_calls_gen(n, fn)
    value: Any = None
    start = clock()
    try:
        while True:
            effect = gen.send(value)
            value = (await effect.fn(*effect.args)) if is_async else effect.fn(*effect.args)
            journal += orjson.dumps(value)
    except StopIteration:
        pass
    return (clock() - start) / n


async def asyncio_reference(n: int, threaded: bool) -> float:
    """Seconds per round trip of the hop an engine needs to run an activity apart from
    the workflow: `create_task` + await (async), or `run_in_executor` (sync)."""
    loop = asyncio.get_running_loop()
    start = clock()
    if threaded:
        for i in range(n):
            await loop.run_in_executor(None, w.inc_sync, i)
    else:
        for i in range(n):
            await loop.create_task(w.inc(i))
    return (clock() - start) / n


async def ours(engine: durable.Engine, fn: Any, n: int, steps: int) -> float:
    """Seconds per step of one workflow from `start` to its result."""
    start = clock()
    handle = await engine.start(fn, n)
    await handle.result()
    return (clock() - start) / steps


async def _measure(cfg: Settings) -> list[Row]:
    rows: list[Row] = []
    n_pure = cfg.size(10_000, 3_000, 50)
    n_async = cfg.size(5_000, 2_000, 30)
    n_sync = cfg.size(2_000, 500, 20)
    codec, why_not = aes_codec()
    async with durable.Engine("memory:") as engine:
        async def floor_p() -> float:
            return floor_pure(n_pure)

        async def ours_p() -> float:
            return await ours(engine, w.pure, n_pure, 3 * n_pure)

        mine, floor = await alternate_async(cfg.reps, ours_p, floor_p)
        rows.append(Row(CASE, "pure effect (uuid/now/random) per step", median(mine) * 1e6, "µs",
                        median(floor) * 1e6, "bare loop", target=Target("<=", 1.9), samples=mine))

        async def ours_a() -> float:
            return await ours(engine, w.steps, n_async, n_async)

        async def floor_a() -> float:
            return await floor_calls(n_async, w.inc, True)

        async def hop_a() -> float:
            return await asyncio_reference(n_async, False)

        mine, floor, hop = await alternate_async(cfg.reps, ours_a, floor_a, hop_a)
        rows.append(Row(CASE, "async activity call per step", median(mine) * 1e6, "µs", median(floor) * 1e6,
                        "bare loop", target=Target("<=", 10), samples=mine))
        rows.append(Row(CASE, "  reference: create_task + await, no engine", median(hop) * 1e6, "µs",
                        median(floor) * 1e6, "bare loop", samples=hop))

        async def ours_s() -> float:
            return await ours(engine, w.steps_sync, n_sync, n_sync)

        async def floor_s() -> float:
            return await floor_calls(n_sync, w.inc_sync, False)

        async def hop_s() -> float:
            return await asyncio_reference(n_sync, True)

        mine, floor, hop = await alternate_async(cfg.reps, ours_s, floor_s, hop_s)
        rows.append(Row(CASE, "sync activity call per step (thread pool)", median(mine) * 1e6, "µs",
                        median(floor) * 1e6, "bare loop", target=Target("<=", 10), samples=mine))
        rows.append(Row(CASE, "  reference: run_in_executor round trip, no engine", median(hop) * 1e6, "µs",
                        median(floor) * 1e6, "bare loop", samples=hop))

    if codec is None:
        rows.append(Row(CASE, "async activity step, AES-GCM vs plain", None, "", note=why_not or ""))
        return rows
    async with durable.Engine("memory:") as plain, durable.Engine("memory:", codecs=[codec]) as sealed:
        async def ours_plain() -> float:
            return await ours(plain, w.steps, n_async, n_async)

        async def ours_sealed() -> float:
            return await ours(sealed, w.steps, n_async, n_async)

        enc, pln = await alternate_async(cfg.reps, ours_sealed, ours_plain)
        rows.append(Row(CASE, "async activity step, AES-GCM (encryption overhead)", median(enc) * 1e6, "µs",
                        median(pln) * 1e6, "plain", samples=enc))
    return rows


def run(cfg: Settings) -> list[Row]:
    return asyncio.run(_measure(cfg))
