"""Case 3: PostgreSQL, on a throwaway local cluster (fsync on).

The raw asyncpg floors are measured now: one row per transaction in
autocommit on one connection and on 16, and 100 rows per transaction. The
durable rows run the same shapes as the SQLite case once `PostgresStore`
exists, and say "not yet available" until then.
"""

from __future__ import annotations

import asyncio
from typing import Any

from . import pgserver
from .available import postgres_store
from .bench_sqlite import PAYLOAD, durable_rows
from .harness import Row, Settings, clock, median

CASE = "3 postgres"
CONNECTIONS = 16


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
        rows.append(Row(CASE, "durable: 2 and 4 worker processes", None, "", note="not yet measured by the harness"))
    return rows
