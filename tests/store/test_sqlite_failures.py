"""The SQLite store when SQLite fails: a full disk, a failed commit, a read left open.

Every failure here is a real one: SQLite refusing to grow past
`max_page_count` (SQLITE_FULL), the kernel refusing to grow a file past
RLIMIT_FSIZE (SQLITE_IOERR at COMMIT), a full tmpfs (ENOSPC, where we may
mount one). Each test bounds its waits: a writer thread that died would
otherwise hang it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from durable.store import NewWorkflow, StoredEntry, Write
from durable.store.sqlite import SQLiteStore
from durable.store.types import FENCED, OK

T = TypeVar("T")
BOUND = 10.0  # seconds: far more than any of these takes, short enough to report a hang


def bounded(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, BOUND)


def entry(position: int, name: str, payload: bytes = b"p") -> StoredEntry:
    return StoredEntry(position, "call", name, b"digest", False, payload)


def step(workflow_id: str, token: int, *entries: StoredEntry, **changes: Any) -> Write:
    return Write(workflow_id, token, "running", None, entries, **changes)


async def journal(store: SQLiteStore, workflow_id: str) -> list[tuple[int, str]]:
    return [(e.position, e.name) async for chunk in store.load(workflow_id) for e in chunk]


@asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SQLiteStore]:
    """An open store with workflow 'a' leased to worker 'w1' (token 1); close() must not hang."""
    store = SQLiteStore(path)
    await store.open()
    try:
        await store.register_worker("w1", {"wf"}, 0.0)
        created = await store.create(NewWorkflow("a", "wf", b"", 0.0, lease_owner="w1", lease_s=60.0))
        assert created.token == 1
        yield store
    finally:
        await bounded(store.close())


class Gate:
    """Holds the writer thread inside an operation until opened: what is queued meanwhile is one batch."""

    def __init__(self, store: SQLiteStore) -> None:
        self._event = threading.Event()
        assert store._writer is not None
        self.done = store._writer.submit(lambda conn: self._event.wait(BOUND))

    async def open(self) -> None:
        self._event.set()
        await bounded(asyncio.gather(self.done, return_exceptions=True))  # it may share the others' fate


async def queued(*coroutines: Awaitable[T]) -> list[asyncio.Task[T]]:
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    await asyncio.sleep(0)  # one loop turn: each task runs up to its submit to the writer
    return tasks


async def test_a_full_database_fails_one_write_and_the_writer_goes_on(tmp_path: Path) -> None:
    async with opened(tmp_path / "t.db") as store:
        pages = await store._write(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        await store._write(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages + 2}").fetchone())
        gate = Gate(store)
        big, small = await queued(store.commit([step("a", 1, entry(0, "charge", b"x" * 200_000))], 1.0),
                                  store.create(NewWorkflow("b", "wf", b"", 1.0)))
        await gate.open()
        # SQLite rolled the whole transaction back: the write that did not fit fails, its neighbour is redone.
        with pytest.raises(sqlite3.OperationalError, match="full"):
            await bounded(big)
        assert (await bounded(small)).created
        # Still full: a write that does not fit fails again; the writer is still there.
        with pytest.raises(sqlite3.OperationalError, match="full"):
            await bounded(store.commit([step("a", 1, entry(0, "charge", b"x" * 200_000))], 1.0))
        await store._write(lambda conn: conn.execute("PRAGMA max_page_count = 1000000").fetchone())
        assert await bounded(store.commit([step("a", 1, entry(0, "charge"))], 1.0)) == [OK]
        assert await bounded(store.commit([step("a", 1, entry(1, "ship"))], 1.0)) == [OK]
        assert await journal(store, "a") == [(0, "charge"), (1, "ship")]
        assert (await store.get("b")) is not None


async def test_a_commit_that_fails_forgets_the_ids_it_saw(tmp_path: Path) -> None:
    async with opened(tmp_path / "t.db") as store:
        # The journal row of 'charge' and workflow 'b' are created, then the COMMIT fails (the
        # kernel refuses to grow the -wal file: SQLITE_IOERR). Their row ids are free again:
        # a store that remembered them would file 'ship' as 'charge' and 'b's steps under 'c'.
        db = str(tmp_path / "t.db")
        gate = Gate(store)
        tasks = await queued(store.create(NewWorkflow("b", "wf", b"", 1.0, lease_owner="w1", lease_s=60.0)),
                             store.commit([step("b", 1, entry(0, "pack"))], 1.0),
                             store.commit([step("a", 1, entry(0, "charge", b"x" * 300_000))], 1.0))
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        largest = max(os.path.getsize(db + suffix) for suffix in ("", "-wal", "-shm"))
        resource.setrlimit(resource.RLIMIT_FSIZE, (largest + 65536, hard))  # Python ignores SIGXFSZ
        try:
            await gate.open()
            results = await bounded(asyncio.gather(*tasks, return_exceptions=True))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert all(isinstance(r, sqlite3.OperationalError) for r in results), results
        assert await store.get("b") is None

        assert (await store.create(NewWorkflow("c", "wf", b"", 2.0, lease_owner="w1", lease_s=60.0))).token == 1
        assert await bounded(store.commit([step("a", 1, entry(0, "ship"))], 2.0)) == [OK]
        assert await bounded(store.commit([step("a", 1, entry(1, "charge"))], 2.0)) == [OK]
        assert await bounded(store.commit([step("b", 1, entry(0, "pack"))], 2.0)) == [FENCED]  # no such workflow
        assert await journal(store, "a") == [(0, "ship"), (1, "charge")]
        assert await journal(store, "c") == []


async def test_an_operation_rolled_back_alone_forgets_its_labels(tmp_path: Path) -> None:
    async with opened(tmp_path / "t.db") as store:
        # The write adds a journal row labelled 'charge', then its child cannot be inserted
        # (args NULL breaks a NOT NULL constraint): the operation is undone, label row included.
        broken_child = NewWorkflow("kid", "wf", None, 1.0)  # type: ignore[arg-type]
        with pytest.raises(sqlite3.IntegrityError):
            await bounded(store.commit([step("a", 1, entry(0, "charge"), creates=[broken_child])], 1.0))
        assert await bounded(store.commit([step("a", 1, entry(0, "ship"))], 1.0)) == [OK]
        assert await bounded(store.commit([step("a", 1, entry(1, "charge"))], 1.0)) == [OK]
        assert await journal(store, "a") == [(0, "ship"), (1, "charge")]


async def test_a_read_left_in_its_transaction_does_not_pin_the_reader(tmp_path: Path) -> None:
    async with opened(tmp_path / "t.db") as store:
        def stuck(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM workflows").fetchone()  # the snapshot is taken here

        await store._read(stuck)
        await store.create(NewWorkflow("later", "wf", b"", 1.0))
        assert await bounded(store.get("later")) is not None


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 1 MB tmpfs: a real ENOSPC. Needs the right to mount (root); skipped otherwise."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_then_space_again(small_disk: Path) -> None:
    store = SQLiteStore(small_disk / "t.db")
    await store.open()
    try:
        await store.register_worker("w1", {"wf"}, 0.0)
        await store.create(NewWorkflow("a", "wf", b"", 0.0, lease_owner="w1", lease_s=60.0))
        filler = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(filler, bytes(65536))
        except OSError:  # ENOSPC: the disk is full
            pass
        finally:
            os.close(filler)
        for _ in range(2):
            with pytest.raises(sqlite3.OperationalError, match="full"):
                await bounded(store.commit([step("a", 1, entry(0, "charge", b"x" * 300_000))], 1.0))
        os.remove(small_disk / "filler")
        assert await bounded(store.commit([step("a", 1, entry(0, "ship"))], 1.0)) == [OK]
        assert await bounded(store.commit([step("a", 1, entry(1, "charge"))], 1.0)) == [OK]
        assert await journal(store, "a") == [(0, "ship"), (1, "charge")]
    finally:
        await bounded(store.close())
