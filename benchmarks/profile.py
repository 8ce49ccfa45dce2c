"""Where the time goes: one workload under cProfile, summarized.

    python -m benchmarks.profile pure|async|sync|replay|sqlite [--top N] [--sort tottime|cumtime]

Prints the top functions and how the profiled time splits between durable's
own modules, asyncio and the rest. cProfile inflates small Python calls
several times over: read the shares, not the absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import durable

from . import workflows as w

DURABLE_DIR = os.path.dirname(os.path.abspath(durable.__file__))


async def _engine_run(spec: str, fn: Any, *args: Any, workflows: int = 1) -> Callable[[], Awaitable[None]]:
    engine = durable.Engine(spec)
    await engine.__aenter__()

    async def once() -> None:
        handles = await asyncio.gather(*(engine.start(fn, *args) for _ in range(workflows)))
        await asyncio.gather(*(h.result() for h in handles))

    await once()  # warm-up
    return once


async def _replay_run() -> Callable[[], Awaitable[None]]:
    from durable.store import MemoryStore

    from .bench_replay import cold_replay, write_journal

    store = MemoryStore()
    wid = await write_journal(store, [], 20_000)

    async def once() -> None:
        await cold_replay(store, [], wid, 20_000)

    await once()
    return once


def workload(name: str, workdir: str) -> Callable[[], Awaitable[Callable[[], Awaitable[None]]]]:
    db = os.path.join(workdir, "profile.db")
    return {
        "pure": lambda: _engine_run("memory:", w.pure, 10_000),
        "async": lambda: _engine_run("memory:", w.steps, 5_000),
        "sync": lambda: _engine_run("memory:", w.steps_sync, 1_000),
        "replay": _replay_run,
        "sqlite": lambda: _engine_run(db, w.steps, 20, workflows=1_000),
    }[name]


def summarize(stats: pstats.Stats, top: int, sort: str) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(sort).print_stats(top)
    shares = {"durable": 0.0, "asyncio": 0.0, "other": 0.0}
    for (path, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if path.startswith(DURABLE_DIR):
            shares["durable"] += tottime
        elif "asyncio" in path or "selectors" in path:
            shares["asyncio"] += tottime
        else:
            shares["other"] += tottime
    total = sum(shares.values()) or 1.0
    split = ", ".join(f"{k} {v / total:.0%}" for k, v in shares.items())
    return f"{out.getvalue().rstrip()}\n\nprofiled time by origin: {split}"


async def _main(name: str, top: int, sort: str) -> None:
    with tempfile.TemporaryDirectory(prefix="durable-profile-") as workdir:
        once = await workload(name, workdir)()
        profiler = cProfile.Profile()
        profiler.enable()
        await once()
        profiler.disable()
        print(summarize(pstats.Stats(profiler), top, sort))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("workload", choices=["pure", "async", "sync", "replay", "sqlite"])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumtime"])
    args = parser.parse_args()
    asyncio.run(_main(args.workload, args.top, args.sort))


if __name__ == "__main__":
    main()
