"""Case 3: PostgreSQL, on a throwaway local cluster (fsync on).

The raw asyncpg floors: one row per transaction in autocommit on one
connection and on 16, and 100 rows per transaction. The durable rows run
the shapes of the SQLite case on `PostgresStore` (they say why not when it
cannot be imported), then the same 1,000 workflows run by 2 and by 4 worker
processes sharing the database, started from a client engine in this
process (`python -m benchmarks.bench_postgres --worker DSN` is one worker).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import durable

from . import pgserver
from .available import postgres_store
from .bench_sqlite import PAYLOAD, durable_rows
from . import workflows as w
from .harness import Row, Settings, Target, clock, median

CASE = "3 postgres"
CONNECTIONS = 16
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RawPostgres:
    """The floors, on asyncpg, on a table shaped like a journal."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.loop = asyncio.new_event_loop()
        self.pool: Any = None
        self.next_wf = 0

    def __enter__(self) -> RawPostgres:
        import asyncpg

        async def setup() -> Any:
            pool = await asyncpg.create_pool(self.dsn, min_size=CONNECTIONS, max_size=CONNECTIONS)
            await pool.execute("CREATE TABLE IF NOT EXISTS raw_journal (wf bigint, position int, payload bytea,"
                               " PRIMARY KEY (wf, position))")
            return pool

        self.pool = self.loop.run_until_complete(setup())
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()

    def _wf(self) -> int:
        self.next_wf += 1
        return self.next_wf

    async def _rows(self, conn: Any, n: int) -> None:
        wf = self._wf()
        for i in range(n):
            await conn.execute("INSERT INTO raw_journal VALUES ($1, $2, $3)", wf, i, PAYLOAD)

    def one_row_per_txn(self, n: int) -> float:
        """Seconds per row, one connection, autocommit."""
        async def go() -> float:
            async with self.pool.acquire() as conn:
                start = clock()
                await self._rows(conn, n)
                return (clock() - start) / n

        return self.loop.run_until_complete(go())

    def parallel(self, rows: int) -> float:
        """Rows per second, CONNECTIONS connections each inserting one row per transaction."""
        each = max(1, rows // CONNECTIONS)

        async def worker() -> None:
            async with self.pool.acquire() as conn:
                await self._rows(conn, each)

        async def go() -> float:
            start = clock()
            await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
            return each * CONNECTIONS / (clock() - start)

        return self.loop.run_until_complete(go())

    def batched(self, rows: int, per_commit: int = 100) -> float:
        """Rows per second, `per_commit` rows per transaction with executemany."""
        keys = [self._wf() for _ in range(per_commit)]
        batches = [[(wf, position, PAYLOAD) for wf in keys] for position in range(max(1, rows // per_commit))]

        async def go() -> float:
            async with self.pool.acquire() as conn:
                start = clock()
                for batch in batches:
                    async with conn.transaction():
                        await conn.executemany("INSERT INTO raw_journal VALUES ($1, $2, $3)", batch)
                return len(batches) * per_commit / (clock() - start)

        return self.loop.run_until_complete(go())


class Workers:
    """`count` worker processes on `dsn`, each an Engine running the benchmark workflows."""

    def __init__(self, dsn: str, count: int) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_postgres", "--worker", dsn],
                                       cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE) for _ in range(count)]

    def __enter__(self) -> Workers:
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith(b"ready"):
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"a benchmark worker did not start: {line!r} {err[-800:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:  # a clean stop: the worker leaves its engine when stdin closes
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def client_run(dsn: str, workflows: int, steps: int) -> float:
    """Steps per second of `workflows` workflows started by a client engine, run by the workers.

    The client learns of results by polling the store; a short poll interval keeps its lag out of
    the measurement (the default, 1 s, is as long as a whole run).
    """
    async with durable.Engine(dsn, worker=False, poll_interval=0.02) as client:
        start = clock()
        handles = await asyncio.gather(*(client.start(w.steps, steps) for _ in range(workflows)))
        await asyncio.gather(*(h.result() for h in handles))
        return workflows * steps / (clock() - start)


def process_rows(dsn: str, cfg: Settings) -> list[Row]:
    workflows, per = 1000, cfg.size(100, 20, 5)
    reps = max(1, min(cfg.reps, 3))
    rows = []
    for count in (2, 4):
        with Workers(dsn, count):
            asyncio.run(client_run(dsn, workflows // 10, per))  # warm-up
            samples = [asyncio.run(client_run(dsn, workflows, per)) for _ in range(reps)]
        rows.append(Row(CASE, f"{workflows:,} workflows × {per} steps, {count} worker processes", median(samples),
                        "steps/s", higher_is_better=True, target=Target(">=", 20_000), samples=samples))
    return rows


async def worker(dsn: str) -> None:
    """One worker process: run workflows until stdin closes."""
    async with durable.Engine(dsn):
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def run(cfg: Settings) -> list[Row]:
    why = pgserver.available()
    if why is not None:
        return [Row(CASE, "PostgreSQL", None, "", note=why)]
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return [Row(CASE, "PostgreSQL", None, "", note="skipped: asyncpg is not installed (pip install -e '.[postgres]')")]
    n = cfg.size(500, 200, 20)
    rows: list[Row] = []
    with pgserver.throwaway_cluster() as dsn, RawPostgres(dsn) as raw:
        raw.one_row_per_txn(n)  # warm-up
        raw.parallel(n * CONNECTIONS // 4)
        per_row = median([raw.one_row_per_txn(n) for _ in range(cfg.reps)])
        rate16 = median([raw.parallel(n * CONNECTIONS // 2) for _ in range(cfg.reps)])
        rate100 = median([raw.batched(n * 20) for _ in range(cfg.reps)])
        rows += [
            Row(CASE, "raw floor: asyncpg 1 row/txn, autocommit", per_row * 1e6, "µs/row"),
            Row(CASE, f"raw floor: asyncpg {CONNECTIONS} connections × 1 row/txn", rate16, "rows/s",
                higher_is_better=True),
            Row(CASE, "raw floor: asyncpg executemany 100 rows/txn", rate100, "rows/s", higher_is_better=True),
        ]
        store, why_not = postgres_store()
        if store is None:
            for name in ("durable: 1 workflow (target ≤ 1.5× floor)",
                         "durable: 1,000 concurrent workflows, 1 process (target ≥ 20,000 steps/s)",
                         "durable: 2 and 4 worker processes"):
                rows.append(Row(CASE, name, None, "", note=why_not or ""))
            return rows
        rows += durable_rows(CASE, dsn, raw.one_row_per_txn, raw.batched, cfg, one_target=1.5, rate_target=20_000)
        rows += process_rows(dsn, cfg)
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] != ["--worker"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m benchmarks.bench_postgres --worker DSN")
    asyncio.run(worker(sys.argv[2]))
