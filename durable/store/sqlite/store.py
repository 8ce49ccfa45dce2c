"""SQLiteStore: the embedded default, on the standard library's sqlite3.

WAL mode, `synchronous=FULL` by default (every commit is durable when it
returns; `NORMAL` is faster but can lose the last commits on power loss,
never on a process crash), one writer thread doing group commit, one reader
thread, the event loop never blocked. Several processes may share a file:
`BEGIN IMMEDIATE` serializes writers, leases with fencing tokens keep a
workflow on one worker, and a worker's file lock tells the others when it
died.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from ...errors import WorkflowNotFoundError
from ..types import FINISHED, Claim, Created, Inbox, NewWorkflow, StoredEntry, StoredPayload, WorkflowRecord, Write
from ..validate import check_name, check_new, check_write
from ..wait import wait_event
from . import ops
from .liveness import WorkerLocks
from .schema import migrate
from .threads import DbThread, TxnDict

__all__ = ["SQLiteStore"]

_CHUNK = 2048
_IN_CHUNK = 500  # values per IN (...) list, well under SQLite's parameter limit


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _chunks(values: Collection[str]) -> list[list[str]]:
    items = list(values)
    return [items[i : i + _IN_CHUNK] for i in range(0, len(items), _IN_CHUNK)]
_SWEEP_EVERY = 0.02  # seconds between checks for dead workers and expired leases


class SQLiteStore:
    """A durable store in one SQLite file (plus `-wal`, `-shm` and a `-workers` directory).

    `synchronous` is "FULL" (default) or "NORMAL"; `busy_timeout` is how long
    a writer waits for another process's transaction; `notify_interval` is
    how often an idle engine looks for work other processes created.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL",
                 busy_timeout: float = 10.0, notify_interval: float = 0.01) -> None:
        path = os.fspath(path)
        if path in ("", ":memory:") or path.startswith("file:"):
            raise ValueError(f"SQLiteStore needs a file path, got {path!r}; for an in-memory store use 'memory:'")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = os.path.abspath(path)
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self.notify_interval = notify_interval
        self._locks = WorkerLocks(self.path)
        self._pid = 0
        self._writer: DbThread | None = None
        self._reader: DbThread | None = None
        self._event: asyncio.Event | None = None
        self._stamp = 0
        # Set by a write that others should hear about; told once its transaction commits.
        # `_notify` wakes this process's engine too; `_tell_others` only other processes
        # (a finished workflow's result: this engine told its own waiters already).
        self._notify = False
        self._notify_commit = False
        self._tell_others = False
        self._tell_others_commit = False
        # Writer-thread caches, filled only from committed transactions (see TxnDict).
        self._labels: TxnDict[tuple[str, str], int] = TxnDict()
        # id -> key: keys never change, and writes name workflows by id.
        self._keys: TxnDict[str, int] = TxnDict()
        self._last_sweep = 0.0

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- lifecycle ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=self.busy_timeout)
        self._use_wal(conn)
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA cache_size = -16000")
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        # WAL is a property of the file: once set it stays. Switching to it needs
        # an exclusive lock, and SQLite may refuse that at once (without its busy
        # handler) while another process opens the same new file: retry.
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.001
        while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._pid = os.getpid()
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"cannot create {self.path}: directory {directory} does not exist")
        self._locks.prepare()
        conn = await loop.run_in_executor(None, self._connect)
        try:
            await loop.run_in_executor(None, migrate, conn, self.path)
        finally:
            conn.close()
        self._event = asyncio.Event()
        self._stamp = self._locks.notify_stamp()
        self._writer = DbThread("durable-sqlite-writer", self._connect, writer=True,
                                on_op_end=self._op_ended, on_txn_end=self._txn_ended)
        self._reader = DbThread("durable-sqlite-reader", self._connect, writer=False)
        self._writer.start(loop)
        self._reader.start(loop)

    async def close(self) -> None:
        for thread in (self._writer, self._reader):
            if thread is not None:
                await asyncio.get_running_loop().run_in_executor(None, thread.stop)
        self._writer = self._reader = None
        self._wake()

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            raise RuntimeError(
                f"this SQLiteStore was opened in process {self._pid}; after fork() open a new Engine "
                "in the child (connections are never carried across fork)"
            )

    async def _write(self, op):  # type: ignore[no-untyped-def]
        self._check_process()
        if self._writer is None:
            raise RuntimeError("the SQLite store is closed")
        return await self._writer.submit(op)

    async def _read(self, op):  # type: ignore[no-untyped-def]
        return await self._read_soon(op)

    def _read_soon(self, op):  # type: ignore[no-untyped-def]
        """Hand `op` to the reader thread now; the future of its result."""
        self._check_process()
        if self._reader is None:
            raise RuntimeError("the SQLite store is closed")
        return self._reader.submit(op)

    # Called in the writer thread after each operation (ok False: rolled back) and each transaction.
    def _op_ended(self, ok: bool) -> None:
        self._labels.op_ended(ok)
        self._keys.op_ended(ok)
        self._notify_commit = self._notify_commit or (ok and self._notify)
        self._tell_others_commit = self._tell_others_commit or (ok and self._tell_others)
        self._notify = self._tell_others = False

    def _txn_ended(self, committed: bool) -> None:
        self._labels.txn_ended(committed)
        self._keys.txn_ended(committed)
        notify, self._notify_commit = self._notify_commit, False
        others, self._tell_others_commit = self._tell_others_commit, False
        if committed and (notify or others):
            self._locks.notify()
            self._stamp = self._locks.notify_stamp()
            loop = self._writer._loop if self._writer is not None else None  # noqa: SLF001
            if notify and loop is not None:
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()

    def _key(self, conn: sqlite3.Connection, workflow_id: str) -> int | None:
        key = self._keys.get(workflow_id)
        if key is None:
            found = conn.execute("SELECT key FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
            if found is not None:
                key = found[0]
                self._keys.put(workflow_id, key)
        return key

    def _label(self, conn: sqlite3.Connection, kind: str, name: str) -> int:
        key = (kind, name)
        found = self._labels.get(key)
        if found is not None:
            return found
        conn.execute("INSERT INTO labels (kind, name) VALUES (?, ?) ON CONFLICT DO NOTHING", key)
        label = conn.execute("SELECT label FROM labels WHERE kind = ? AND name = ?", key).fetchone()[0]
        self._labels.put(key, label)
        return label

    # -- workers ----------------------------------------------------------------------

    async def register_worker(self, worker: str, names: Collection[str], now: float) -> None:
        check_name(worker, "worker id")

        def op(conn: sqlite3.Connection) -> None:
            lock = self._locks.acquire(worker)  # kept if this transaction fails: the retry finds it held
            conn.execute(
                "INSERT INTO workers (worker, lock, pid, host, names, started_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (worker) DO UPDATE SET names = excluded.names",
                (worker, lock, os.getpid(), socket.gethostname(), json.dumps(sorted(names)), now),
            )

        await self._write(op)
        self._last_sweep = 0.0

    async def unregister_worker(self, worker: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                # ready_at is on the engine's clock (maybe virtual): keep it, or take the last write's time.
                "UPDATE workflows SET lease_owner = NULL, lease_expires = NULL, attempts = 0, "
                "ready_at = coalesce(ready_at, updated_at) WHERE lease_owner = ?", (worker,))
            conn.execute("DELETE FROM workers WHERE worker = ?", (worker,))
            self._notify = True

        try:
            await self._write(op)
        finally:
            self._locks.release(worker)

    async def live_names(self) -> set[str]:
        def op(conn: sqlite3.Connection) -> set[str]:
            names: set[str] = set()
            for worker, lock, registered in conn.execute("SELECT worker, lock, names FROM workers"):
                if self._locks.alive(worker, lock):
                    names.update(json.loads(registered))
            return names

        return await self._read(op)

    def _sweep(self, conn: sqlite3.Connection, me: str, now: float) -> None:
        """Release the leases of dead workers and expired leases: ready for someone now."""
        wall = time.time()
        if wall - self._last_sweep < _SWEEP_EVERY:
            return
        self._last_sweep = wall
        for worker, lock in conn.execute("SELECT worker, lock FROM workers WHERE worker != ?", (me,)).fetchall():
            if not self._locks.alive(worker, lock):
                conn.execute("UPDATE workflows SET lease_owner = NULL, lease_expires = NULL, ready_at = ? "
                             "WHERE lease_owner = ?", (now, worker))
                conn.execute("DELETE FROM workers WHERE worker = ?", (worker,))
                self._locks.forget(lock)
        conn.execute(
            "UPDATE workflows SET lease_owner = NULL, lease_expires = NULL, ready_at = ? "
            "WHERE lease_owner IS NOT NULL AND (lease_expires < ? OR lease_owner NOT IN (SELECT worker FROM workers))",
            (now, wall))

    # -- workflows --------------------------------------------------------------------

    async def create(self, new: NewWorkflow) -> Created:
        check_new(new)

        def op(conn: sqlite3.Connection) -> Created:
            expires = time.time() + new.lease_s if new.lease_owner is not None else None
            key = ops.insert_workflow(conn, new, expires)
            record = ops.get_record(conn, new.id)
            assert record is not None
            if key is None:
                return Created(record, created=False)
            if new.lease_owner is None:
                self._notify = True
                return Created(record, created=True)
            return Created(record, created=True, token=1)

        return await self._write(op)

    async def claim(self, worker: str, names: Collection[str], limit: int, lease_s: float,
                    now: float, suspects: int = 1) -> list[Claim]:
        names = list(names)

        def op(conn: sqlite3.Connection) -> list[Claim]:
            self._sweep(conn, worker, now)
            claims = [ops.claim(row, held=True) for row in conn.execute(
                f"UPDATE workflows SET notified_poke = poke WHERE lease_owner = ? AND poke > seen_poke "
                f"AND poke > notified_poke RETURNING {ops.CLAIM_COLUMNS}", (worker,)).fetchall()]
            fresh: list[Claim] = []
            expires = time.time() + lease_s
            # Workflows whose last two claims ended in a crash (attempts > 1)
            # come at most `suspects` at a time; the others as many as fit.
            for condition, cap in (("attempts <= 1", limit), ("attempts > 1", min(suspects, limit))):
                taken = 0
                for group in _chunks(names):
                    room = min(cap - taken, limit - len(fresh))
                    if room <= 0:
                        break
                    rows = conn.execute(
                        "UPDATE workflows SET lease_owner = ?, lease_token = lease_token + 1, lease_expires = ?, "
                        "attempts = attempts + 1, notified_poke = poke WHERE key IN (SELECT key FROM workflows "
                        f"WHERE ready_at <= ? AND lease_owner IS NULL AND {condition} "
                        f"AND name IN ({_marks(len(group))}) ORDER BY ready_at LIMIT ?) "
                        f"RETURNING {ops.CLAIM_COLUMNS}", (worker, expires, now, *group, room)).fetchall()
                    taken += len(rows)
                    fresh.extend(ops.claim(row, held=False) for row in rows)
            claims.extend(fresh)
            return claims

        return await self._write(op)

    async def next_ready(self, names: Collection[str]) -> float | None:
        groups = _chunks(names)

        def op(conn: sqlite3.Connection) -> float | None:
            times = []
            for group in groups:
                row = conn.execute(
                    "SELECT ready_at FROM workflows WHERE lease_owner IS NULL AND ready_at IS NOT NULL "
                    f"AND name IN ({_marks(len(group))}) ORDER BY ready_at LIMIT 1", group).fetchone()
                if row is not None:
                    times.append(row[0])
            return min(times) if times else None

        return await self._read(op)

    async def renew(self, worker: str, ids: Collection[str], lease_s: float) -> None:
        groups = _chunks(ids)

        def op(conn: sqlite3.Connection) -> None:
            expires = time.time() + lease_s
            for group in groups:
                conn.execute(f"UPDATE workflows SET lease_expires = ? WHERE lease_owner = ? "
                             f"AND id IN ({_marks(len(group))})", (expires, worker, *group))

        await self._write(op)

    async def load(self, workflow_id: str) -> AsyncIterator[Sequence[StoredEntry]]:  # type: ignore[override]
        def find(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT key FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
            if row is None:
                raise WorkflowNotFoundError(workflow_id)
            return row[0]

        key = await self._read(find)
        after = -1
        pending = self._read_soon(lambda conn: ops.journal_chunk(conn, key, -1, _CHUNK))
        while True:
            chunk = await pending
            if len(chunk) == _CHUNK:
                # Read the next chunk while the caller replays this one.
                after = chunk[-1][0]
                pending = self._read_soon(lambda conn, after=after: ops.journal_chunk(conn, key, after, _CHUNK))
            if chunk:
                yield chunk
            if len(chunk) < _CHUNK:
                return

    async def commit(self, writes: Sequence[Write], now: float) -> list[str]:
        for write in writes:
            check_write(write)

        def op(conn: sqlite3.Connection) -> list[str]:
            label = lambda kind, name: self._label(conn, kind, name)  # noqa: E731
            keys = [self._key(conn, write.workflow_id) for write in writes]
            outcomes: list[str | None] = [None] * len(writes)
            appends = [i for i, write in enumerate(writes) if not write.touch and keys[i] is not None]
            if len(appends) > 1:
                ops.append_many(conn, writes, keys, appends, label, outcomes)
            for i, write in enumerate(writes):
                if outcomes[i] is None:
                    outcomes[i] = ops.apply_write(conn, write, now, keys[i], label)
            if any(w.creates or w.wake or w.cancel or (w.release and w.status not in FINISHED) for w in writes):
                self._notify = True
            elif any(w.release for w in writes):
                self._tell_others = True
            return outcomes  # type: ignore[return-value]

        return await self._write(op)

    # -- signals and control ------------------------------------------------------------------

    async def signal(self, workflow_id: str, name: str, payload: bytes, now: float) -> int:
        check_name(name, "signal name")

        def op(conn: sqlite3.Connection) -> int:
            seq = ops.signal(conn, workflow_id, name, payload, now)
            self._notify = True
            return seq

        return await self._write(op)

    async def inbox(self, workflow_id: str) -> Inbox:
        signals, poke, cancel = await self._read(lambda conn: ops.inbox(conn, workflow_id))
        return Inbox(signals, poke, cancel)

    async def cancel(self, workflow_id: str, now: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            done = ops.cancel(conn, workflow_id, now)
            self._notify = self._notify or done
            return done

        return await self._write(op)

    async def poke(self, workflow_id: str, now: float) -> None:
        """Make an unfinished workflow ready now, as a signal would, without one."""

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(ops.POKE_BY_ID, (now, workflow_id)).rowcount:
                self._notify = True

        await self._write(op)

    async def unblock(self, ids: Collection[str] | None, names: Collection[str] | None, now: float) -> int:
        targets = [("id", group) for group in _chunks(ids or ())] + [("name", group) for group in _chunks(names or ())]

        def op(conn: sqlite3.Connection) -> int:
            count = 0
            for column, group in targets:
                count += conn.execute(
                    "UPDATE workflows SET status = 'running', blocked_reason = NULL, ready_at = ?, attempts = 0 "
                    f"WHERE status = 'blocked' AND {column} IN ({_marks(len(group))})", (now, *group)).rowcount
            if count:
                self._notify = True
            return count

        return await self._write(op)

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        return await self._read(lambda conn: ops.get_record(conn, workflow_id))

    async def list(self, *, status: str | None = None, name: str | None = None, limit: int = 100,
                   after: str | None = None) -> list[WorkflowRecord]:
        clauses, params = [], []
        for column, value in (("status", status), ("name", name)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if after is not None:
            clauses.append("id > ?")
            params.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {ops.RECORD_COLUMNS} FROM workflows {where} ORDER BY id LIMIT ?"
        return await self._read(lambda conn: [ops.record(r) for r in conn.execute(sql, (*params, limit))])

    async def wait_for_work(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        event = self._event
        deadline = loop.time() + timeout
        while True:
            if event is None:
                await asyncio.sleep(timeout)
                return
            if event.is_set():
                event.clear()
                return
            stamp = self._locks.notify_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await wait_event(event, min(self.notify_interval, remaining))

    async def payloads(self, after: tuple[Any, ...] | None, limit: int) -> list[StoredPayload]:
        return await self._read(lambda conn: ops.payload_page(conn, after, limit))

    async def replace_payloads(self, changes: Sequence[tuple[StoredPayload, bytes]]) -> int:
        return await self._write(lambda conn: ops.replace_payloads(conn, changes))

    async def get_meta(self, key: str) -> bytes | None:
        def op(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else row[0]

        return await self._read(op)

    async def set_meta(self, key: str, value: bytes, *, replace: bool = False) -> bytes:
        def op(conn: sqlite3.Connection) -> bytes:
            if replace:
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                             "SET value = excluded.value", (key, value))
            else:
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value))
            return conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]

        return await self._write(op)
