"""Case 6: footprint: bytes on disk per journal entry, `import durable` time, encryption overhead.

Bytes per entry: W workflows of K steps returning small integers, run by the
engine on SQLite, against the same W workflows with no steps; the file size
difference after a WAL checkpoint, divided by W·K. Floor: a bare
(wf, position, payload) table holding W·K five-byte payloads.

Import time: a whole process, `python -c "import durable"`, against
`python -c pass`, bytecode already compiled and PYTHONDONTWRITEBYTECODE
removed from the environment (otherwise every process compiles the package
again and the import looks ~5× slower than users see it).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from typing import Any

import durable

from . import workflows as w
from .available import aes_codec, sqlite_store
from .bench_sqlite import PAYLOAD
from .harness import Row, Settings, Target, clock, median

CASE = "6 footprint"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- bytes per entry ---------------------------------------------------------------------


def _checkpointed_size(path: str) -> int:
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return os.path.getsize(path)


async def _engine_file(path: str, codecs: list[Any], workflows: int, steps: int) -> int:
    async with durable.Engine(path, codecs=codecs) as engine:
        handles = await asyncio.gather(*(engine.start(w.steps, steps) for _ in range(workflows)))
        await asyncio.gather(*(h.result() for h in handles))
    return _checkpointed_size(path)


def durable_bytes_per_entry(workdir: str, tag: str, codecs: list[Any], workflows: int, steps: int) -> float:
    full = asyncio.run(_engine_file(os.path.join(workdir, f"fp-{tag}-full.db"), codecs, workflows, steps))
    empty = asyncio.run(_engine_file(os.path.join(workdir, f"fp-{tag}-empty.db"), codecs, workflows, 0))
    return (full - empty) / (workflows * steps)


def raw_bytes_per_entry(workdir: str, rows: int) -> float:
    sizes = []
    for n in (0, rows):
        path = os.path.join(workdir, f"fp-raw-{n}.db")
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE journal (wf INTEGER, position INTEGER, payload BLOB,"
                    " PRIMARY KEY (wf, position)) WITHOUT ROWID")
        con.execute("BEGIN")
        con.executemany("INSERT INTO journal VALUES (?, ?, ?)", ((i % 100, i, PAYLOAD) for i in range(n)))
        con.execute("COMMIT")
        con.close()
        sizes.append(_checkpointed_size(path))
    return (sizes[1] - sizes[0]) / rows


# -- import time ------------------------------------------------------------------------------


def _process_seconds(code: str, env: dict[str, str]) -> float:
    start = clock()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return clock() - start


def import_times(reps: int) -> tuple[list[float], list[float]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    _process_seconds("import durable", env)  # compile and cache the bytecode once
    ours, floor = [], []
    for _ in range(max(reps, 3)):
        ours.append(_process_seconds("import durable", env))
        floor.append(_process_seconds("pass", env))
    return ours, floor


def run(cfg: Settings) -> list[Row]:
    rows: list[Row] = []
    ours, floor = import_times(cfg.reps)
    rows.append(Row(CASE, "`import durable`, whole process", median(ours) * 1e3, "ms", median(floor) * 1e3,
                    "python -c pass", target=Target("<=", 100),
                    note=f"import itself {(median(ours) - median(floor)) * 1e3:.0f} ms", samples=ours))
    if cfg.memory_only:
        return rows
    store, why_not = sqlite_store()
    if store is None:
        rows.append(Row(CASE, "bytes on disk per journal entry", None, "", note=why_not or ""))
        return rows
    workflows, steps = cfg.size(20, 10, 5), cfg.size(250, 100, 50)
    n = workflows * steps
    raw = raw_bytes_per_entry(cfg.workdir, n)
    plain = durable_bytes_per_entry(cfg.workdir, "plain", [], workflows, steps)
    rows.append(Row(CASE, f"bytes per journal entry (SQLite, {n:,} small ints)", plain, "B", raw, "bare table",
                    target=Target("<=", 100)))
    codec, why_no_aes = aes_codec()
    if codec is None:
        rows.append(Row(CASE, "bytes per journal entry, AES-GCM", None, "", note=why_no_aes or ""))
    else:
        sealed = durable_bytes_per_entry(cfg.workdir, "aes", [codec], workflows, steps)
        rows.append(Row(CASE, "bytes per journal entry, AES-GCM (encryption overhead)", sealed, "B", plain,
                        "plain"))
    return rows
