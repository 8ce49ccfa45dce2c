"""What the SQLite store promises about the process around it: durability settings, group commit,
and a dead worker's workflows taken over at once, even if it forked a child before it died."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import durable
from durable import call
from durable.store import NewWorkflow
from durable.store.sqlite import SQLiteStore


@pytest.mark.parametrize(("chosen", "level"), [(None, 2), ("NORMAL", 1)])  # PRAGMA synchronous: 2 FULL, 1 NORMAL
async def test_wal_and_synchronous_on_the_stores_own_connections(tmp_path: Path, chosen: str | None,
                                                                   level: int) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db) if chosen is None else SQLiteStore(db, synchronous=chosen)
    await store.open()
    try:
        for run in (store._write, store._read):  # the writer's and the reader's connection
            assert await run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == level
            assert await run(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:  # WAL is a property of the file: it stays
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def wal_commits(db: Path) -> int:
    """Transactions committed to the -wal file since it was last reset: its commit frames."""
    data = (db.parent / f"{db.name}-wal").read_bytes()
    if len(data) < 32:
        return 0
    page_size, _, salt = struct.unpack(">I I 8s", data[8:24])
    commits = 0
    for offset in range(32, len(data) - 24 + 1, 24 + page_size):
        _, size_after = struct.unpack(">I I", data[offset : offset + 8])
        if data[offset + 8 : offset + 16] == salt and size_after:  # a frame of this WAL ending a commit
            commits += 1
    return commits


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store = SQLiteStore(db)
    await store.open()
    try:
        assert store._writer is not None
        before, transactions = wal_commits(db), store._writer.batches
        # 300 creates at once: the first waits for nobody, the others pile up during its fsync.
        created = await asyncio.gather(*(store.create(NewWorkflow(f"w{i}", "wf", b"", 0.0)) for i in range(300)))
        assert all(c.created for c in created)
        commits = wal_commits(db) - before
        assert store._writer.batches - transactions == commits
        assert 1 <= commits <= 30, commits
    finally:
        await store.close()


reg = durable.Registry()


@durable.activity(name="group.double")
async def double(x: int) -> int:
    return 2 * x


@reg.workflow(name="group.flow")
def flow(n: int):
    total = 0
    for i in range(n):
        total += yield call(double, i)
    return total


async def test_an_engine_groups_the_steps_of_concurrent_workflows(tmp_path: Path) -> None:
    async with durable.Engine(str(tmp_path / "e.db"), registry=reg) as engine:
        for i in range(50):
            await engine.start(flow, 4, id=f"f{i}")
        for i in range(50):
            assert await engine.result(f"f{i}", timeout=30) == 12
        committer = engine._committer
        assert committer.writes >= 50 * 4
        assert committer.commits * 2 <= committer.writes, (committer.commits, committer.writes)


# A worker process: holds workflow 'x', forks a child (multiprocessing, fork start method) that
# outlives it, says "ready", and waits to be killed. The child waits until the test closes a pipe.
WORKER = textwrap.dedent("""
    import asyncio, multiprocessing, os, sys
    from durable.store import NewWorkflow
    from durable.store.sqlite import SQLiteStore

    def child(release, started):
        os.write(started, b"c")
        os.read(release, 1)  # until the test closes its end

    async def main(db, release):
        store = SQLiteStore(db)
        await store.open()
        await store.register_worker("w-old", {"wf"}, 0.0)
        await store.create(NewWorkflow("x", "wf", b"", 0.0, lease_owner="w-old", lease_s=300.0))
        started_r, started_w = os.pipe()
        multiprocessing.get_context("fork").Process(target=child, args=(release, started_w)).start()
        os.read(started_r, 1)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
async def test_a_forked_child_does_not_keep_a_killed_worker_alive(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    release_r, release_w = os.pipe()
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(db), str(release_r)], pass_fds=[release_r],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(release_r)
    store = SQLiteStore(db)
    try:
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n", worker.stderr.read()  # type: ignore[union-attr]
        await store.open()
        await store.register_worker("w-new", {"wf"}, 0.0)
        # Alive, its child forked: its lock holds, 'x' stays with it.
        assert await store.live_names() == {"wf"}
        assert await store.claim("w-new", {"wf"}, 10, 30.0, time.time()) == []
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        deadline = time.monotonic() + 5.0  # the lease has 300 s to run: only the dead lock lets 'x' go now
        while not (claims := await store.claim("w-new", {"wf"}, 10, 30.0, time.time())):
            assert time.monotonic() < deadline, "worker w-old died, yet its forked child keeps its lock"
            await store.wait_for_work(0.02)
        assert [c.id for c in claims] == ["x"]
    finally:
        os.close(release_w)  # the child exits
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        await store.close()
