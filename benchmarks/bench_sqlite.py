"""Case 2: SQLite with synchronous=FULL, against raw sqlite3 loops in WAL FULL.

One workflow of 100 activity steps against a loop of one INSERT + COMMIT per
step (each durable step costs one fsync, so this is the floor); then 100 and
1,000 concurrent workflows, steps/s through group commit, against the raw
floor of 100 rows per commit.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable

import durable

from . import workflows as w
from .available import sqlite_store
from .harness import Row, Settings, Target, alternate, clock, median

CASE = "2 sqlite"
PAYLOAD = b"\x01j=42"  # what a small integer result looks like in a journal


class RawSQLite:
    """The floor: a bare journal table (integer workflow key, position, payload) in WAL, FULL."""

    def __init__(self, path: str) -> None:
        self.con = sqlite3.connect(path, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS journal (wf INTEGER, position INTEGER, payload BLOB,"
            " PRIMARY KEY (wf, position)) WITHOUT ROWID"
        )
        self.next_wf = 0

    def _keys(self, n: int) -> list[int]:
        first, self.next_wf = self.next_wf, self.next_wf + n
        return list(range(first, first + n))

    def one_row_per_commit(self, n: int) -> float:
        """Seconds per row, each row its own transaction (autocommit)."""
        (wf,) = self._keys(1)
        rows = [(wf, i, PAYLOAD) for i in range(n)]
        insert = "INSERT INTO journal VALUES (?, ?, ?)"
        execute = self.con.execute
        start = clock()
        for row in rows:
            execute(insert, row)
        return (clock() - start) / n

    def batched(self, rows: int, per_commit: int = 100) -> float:
        """Rows per second, `per_commit` rows (one per workflow) per transaction."""
        keys = self._keys(per_commit)
        batches = [[(wf, position, PAYLOAD) for wf in keys] for position in range(rows // per_commit)]
        con = self.con
        start = clock()
        for batch in batches:
            con.execute("BEGIN")
            con.executemany("INSERT INTO journal VALUES (?, ?, ?)", batch)
            con.execute("COMMIT")
        return len(batches) * per_commit / (clock() - start)

    def close(self) -> None:
        self.con.close()


async def one_workflow(engine: durable.Engine, steps: int) -> float:
    """Seconds per step of one workflow of `steps` activity calls, start to result."""
    start = clock()
    handle = await engine.start(w.steps, steps)
    await handle.result()
    return (clock() - start) / steps


async def concurrent(engine: durable.Engine, workflows: int, steps: int) -> float:
    """Steps per second of `workflows` workflows of `steps` calls each, all started at once."""
    start = clock()
    handles = await asyncio.gather(*(engine.start(w.steps, steps) for _ in range(workflows)))
    await asyncio.gather(*(h.result() for h in handles))
    return workflows * steps / (clock() - start)


async def start_to_result(engine: durable.Engine, runs: int) -> list[float]:
    """Seconds from `start` to `result` of a one-step workflow, `runs` times one after another."""
    samples = []
    for _ in range(runs):
        start = clock()
        handle = await engine.start(w.steps, 1)
        await handle.result()
        samples.append(clock() - start)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class EngineThread:
    """An engine kept open on its own event loop, so sync timing helpers can drive it."""

    def __init__(self, spec: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = durable.Engine(spec)
        self.loop.run_until_complete(self.engine.__aenter__())

    def __call__(self, coro_fn: Callable[..., object], *args: object) -> float:
        return self.loop.run_until_complete(coro_fn(self.engine, *args))  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.__aexit__(None, None, None))
        self.loop.close()


def warm_wal(wal_path: str, run_once: Callable[[], object], max_rounds: int = 40) -> None:
    """Run `run_once` until the WAL file at `wal_path` stops growing (it wrapped after a checkpoint)."""
    last = -1
    for _ in range(max_rounds):
        run_once()
        size = os.path.getsize(wal_path) if os.path.exists(wal_path) else 0
        if size == last:
            return
        last = size


def durable_rows(case: str, spec: str, raw_per_step: Callable[[int], float], raw_batched: Callable[[int], float],
                 cfg: Settings, *, one_target: float, rate_target: float) -> list[Row]:
    """One workflow and 100/1,000 concurrent workflows on `spec`, each next to its raw floor."""
    rows: list[Row] = []
    wal_path = None if "://" in spec else spec + "-wal"
    steps = 100
    engine = EngineThread(spec)
    try:
        # Warm up both past the first WAL checkpoint: until the WAL file wraps, every commit also
        # grows it, which costs ~2× per commit (PERFORMANCE.md: fresh vs reused WAL).
        raw_per_step(1200)
        if wal_path is not None:
            warm_wal(wal_path, lambda: engine(one_workflow, steps))
        mine, floor = alternate(cfg.reps, lambda: engine(one_workflow, steps), lambda: raw_per_step(steps),
                                warmup=0)
        rows.append(Row(case, f"1 workflow × {steps} activity steps", median(mine) * 1e6, "µs/step",
                        median(floor) * 1e6, "1 row/commit", target=Target("<=", one_target, "ratio"),
                        samples=mine))
        # A one-step workflow costs two commits (its creation, then its step with the result).
        runs = cfg.size(300, 100, 10)
        latencies = engine(start_to_result, runs)
        floor_ms = median([raw_per_step(20) for _ in range(cfg.reps)]) * 2 * 1e3
        rows.append(Row(case, "start to result, one-step workflow", median(latencies) * 1e3, "ms", floor_ms,
                        "2 commits", note=f"p99 {percentile(latencies, 0.99) * 1e3:.2f} ms over {runs:,} runs"))
        per = cfg.size(100, 20, 5)
        reps = max(1, min(cfg.reps, 3))
        for workflows in (100, 1000):
            total = workflows * per
            mine, floor = alternate(reps, lambda: engine(concurrent, workflows, per),
                                    lambda: raw_batched(min(total, 20_000)), warmup=1)
            rows.append(Row(case, f"{workflows:,} concurrent workflows × {per} steps", median(mine), "steps/s",
                            median(floor), "100 rows/commit", higher_is_better=True,
                            target=Target(">=", rate_target), samples=mine))
    finally:
        engine.close()
    return rows


def run(cfg: Settings) -> list[Row]:
    store, why_not = sqlite_store()
    raw = RawSQLite(os.path.join(cfg.workdir, "raw.db"))
    try:
        if store is None:
            per_row = median([raw.one_row_per_commit(100) for _ in range(cfg.reps)])
            rate = median([raw.batched(10_000) for _ in range(cfg.reps)])
            return [
                Row(CASE, "raw floor: 1 INSERT + COMMIT per step (WAL, FULL)", per_row * 1e6, "µs/step"),
                Row(CASE, "raw floor: 100 rows per commit (WAL, FULL)", rate, "rows/s"),
                Row(CASE, "durable on SQLite", None, "", note=why_not or ""),
            ]
        return durable_rows(CASE, os.path.join(cfg.workdir, "durable.db"), raw.one_row_per_commit, raw.batched,
                            cfg, one_target=1.3, rate_target=40_000)
    finally:
        raw.close()
