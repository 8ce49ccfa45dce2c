"""PostgresStore: many worker processes on many hosts share one PostgreSQL database (asyncpg).

Connections, per open store:
- control: holds every registered worker's session advisory lock (its
  liveness, see liveness.py) and LISTENs for work and membership changes;
- writer: group commits, one at a time (the engine's committer sends them
  one at a time anyway), so a commit never queues behind reads;
- watcher (workers only): blocked on another worker's lock, to learn of its
  death the moment it happens;
- a pool (`pool_size`, default 8) for claims, reads and everything else.
The control and watcher connections need a real session: behind a pooler,
use session pooling, not transaction pooling.

Round trips: a commit is one call of the `commit_writes` function, one
transaction however many workflows it carries; a commit of one write that
only appends journal entries (the common step) is one plain INSERT instead.
The first time this process sees a (kind, name) label costs one more round
trip. A claim is one call of `claim_work`. Concurrent creates, record and
inbox reads and first journal chunks are grouped into one statement each
(batch.py), as the committer groups writes.

Deadlocks cannot arise among durable's own statements (all lock rows in key
order or skip locked ones); a deadlock or serialization failure is retried
anyway, since the statement rolled back whole. A commit that fails any other
way (a lost connection) is not retried: it may have committed.

Wake-ups: every change that makes work for someone (a create, a signal, a
cancel, an unblock, a write that releases a workflow ready now, creates
children, wakes or cancels another) sends NOTIFY, which LISTENing stores
turn into an early return from `wait_for_work`; this process's own changes
set the event directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

from ...errors import WorkflowClosedError, WorkflowNotFoundError
from ...journal import StoredEntry
from ..types import (
    CONFLICT, FENCED, OK, Claim, Created, Inbox, NewWorkflow, Signal, StoredPayload, WorkflowRecord, Write,
)
from ..validate import check_name, check_new, check_write
from ..wait import wait_event
from . import convert, payloads, sql
from .batch import Batcher
from .schema import check_schema_name, lock_namespace, migrate
from .workers import Members

__all__ = ["PostgresStore"]

log = logging.getLogger("durable.store.postgres")

T = TypeVar("T")
_CHUNK = 2048  # journal rows per read
_RETRY_STATES = ("40P01", "40001")  # deadlock detected, serialization failure: rolled back, safe to retry
_new_entry = tuple.__new__


def _session_settings(schema: str) -> dict[str, str]:
    """How durable's sessions run. Every statement is written for index access by key or id, and
    runs many times: plans are built once (generic) and must not fall back to a sequential scan
    because the planner saw a small table when it built them (a generic plan outlives the table
    growing; `id = ANY(array)` over a scan is rows x array compares). JIT only adds latency here.
    A server-wide idle_session_timeout would end the liveness connection of a worker that is alive
    and let another take its workflows while it still runs them: durable's sessions opt out."""
    return {"search_path": schema, "application_name": "durable", "jit": "off",
            "plan_cache_mode": "force_generic_plan", "enable_seqscan": "off", "idle_session_timeout": "0"}


async def _keep_session(conn: Any) -> None:
    """Pool connections keep their session as is: durable never changes one (no LISTEN, no session
    locks, no SET), and asyncpg's default reset would cost a round trip after every statement.
    (asyncpg still rolls back a transaction left open.)"""


class PostgresStore:
    """A durable store in a PostgreSQL database (schema `schema`, created at first open).

    `pool_size` bounds the pool used for claims and reads; `sweep_interval`
    is the least time between two looks for dead workers and expired leases
    at claim time; `watch=False` does without the watcher connection (a dead
    worker is then noticed at the next claim, within the engine's poll
    interval, instead of at once).
    """

    def __init__(self, dsn: str, *, schema: str = "durable", pool_size: int = 8, sweep_interval: float = 0.05,
                 watch: bool = True) -> None:
        if not isinstance(dsn, str) or not dsn:
            raise ValueError(f"PostgresStore needs a DSN such as 'postgresql://user@host/db', got {dsn!r}")
        if pool_size < 1:
            raise ValueError(f"PostgresStore(pool_size={pool_size}) must be at least 1")
        self.dsn = dsn
        self.schema = check_schema_name(schema)
        self.pool_size = pool_size
        self.sweep_interval = sweep_interval
        self.watch = watch
        self._ns = lock_namespace(schema)
        self._settings = _session_settings(schema)
        self._pid = 0
        self._members = Members(self._connect, self._ns, self._on_notify, self._on_death, lambda: self._now, watch)
        self._now = 0.0  # the engine's clock, as last seen
        self._writer: Any = None
        self._writer_lock = asyncio.Lock()
        self._pool: Any = None
        self._event: asyncio.Event | None = None
        self._labels: dict[tuple[str, str], int] = {}
        self._label_names: dict[int, tuple[str, str]] = {}
        self._get = Batcher(self._get_many)
        self._inbox = Batcher(self._inbox_many)
        self._first_chunk = Batcher(self._first_chunks, limit=64)  # at most 64 x _CHUNK rows at once
        self._create = Batcher(self._create_many, first_only=True)
        self._names_seen: Collection[str] | None = None
        self._names_bytes: list[bytes] = []
        self._last_sweep = float("-inf")

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    # -- connections ------------------------------------------------------------------

    async def _connect(self) -> Any:
        import asyncpg

        return await asyncpg.connect(self.dsn, server_settings=self._settings)

    async def open(self) -> None:
        try:
            import asyncpg
        except ImportError:
            raise ImportError("PostgresStore needs asyncpg: pip install 'durable[postgres]'") from None
        self._pid = os.getpid()
        self._event = asyncio.Event()
        try:
            await migrate(await self._members.open(), self.schema)
            self._writer = await self._connect()
            self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size,
                                                   server_settings=self._settings, reset=_keep_session)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for batcher in (self._get, self._inbox, self._create, self._first_chunk):
            batcher.close()
        await self._members.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (asyncio.TimeoutError, Exception):
                pool.terminate()
        writer, self._writer = self._writer, None
        if writer is not None and not writer.is_closed():
            try:
                await asyncio.wait_for(writer.close(), 5)
            except (asyncio.TimeoutError, Exception):
                writer.terminate()
        self._wake()

    def _check(self) -> Any:
        if self._pid != os.getpid():
            raise RuntimeError(
                f"this PostgresStore was opened in process {self._pid}; after fork() open a new Engine in "
                "the child (connections are never carried across fork)")
        if self._pool is None:
            raise RuntimeError("the PostgreSQL store is not open")
        return self._pool

    async def _retrying(self, op: Callable[[], Awaitable[T]]) -> T:
        import asyncpg

        for attempt in range(6):
            try:
                return await op()
            except asyncpg.PostgresError as exc:
                if exc.sqlstate not in _RETRY_STATES or attempt == 5:
                    raise
                log.info("PostgreSQL %s; retrying (%d)", exc.sqlstate, attempt + 1)
                await asyncio.sleep(0.002 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if payload != self.schema:
            return  # another durable schema in the same database
        if channel == "durable_workers":
            self._last_sweep = float("-inf")  # someone came, went or died: look at leases next claim
            if self._members.watcher is not None:
                self._members.watcher.changed()
        self._wake()

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()

    # -- workers ----------------------------------------------------------------------

    async def register_worker(self, worker: str, names: Collection[str], now: float) -> None:
        self._check()
        check_name(worker, "worker id")
        self._now = now
        await self._members.register(worker, sorted(convert.utf8(n) for n in names), now)
        self._last_sweep = float("-inf")

    async def unregister_worker(self, worker: str) -> None:
        self._check()
        await self._members.unregister(worker)
        self._wake()

    async def live_names(self) -> set[str]:
        rows = await self._check().fetch(sql.LIVE_NAMES, self._ns)
        return {row[0].decode() for row in rows} | self._members.names()

    async def _on_death(self) -> None:
        """The watcher saw a worker die: everyone sweeps at their next claim, now."""
        self._last_sweep = float("-inf")
        await self._check().execute(sql.NOTIFY_WORKERS)
        self._wake()

    # -- workflows ---------------------------------------------------------------------

    async def create(self, new: NewWorkflow) -> Created:
        check_new(new)
        self._check()
        if new.lease_owner is not None:
            self._members.key(new.lease_owner)
        inserted = await self._create(new.id, new)
        if inserted is None:  # the id exists (or a concurrent create of it won)
            existing = await self.get(new.id)
            if existing is None:  # rows are never deleted: this cannot happen
                raise RuntimeError(f"workflow {new.id!r} both exists and does not (this is a bug in durable)")
            return Created(existing, created=False)
        _, lease_expires = inserted
        if new.lease_owner is None:  # ready for any worker: the INSERT notified the others
            self._wake()
            return Created(convert.new_record(new, None), created=True)
        return Created(convert.new_record(new, lease_expires), created=True, token=1)

    async def _create_many(self, batch: dict[str, NewWorkflow]) -> dict[str, tuple[int, float | None]]:
        news = list(batch.values())
        rows = await self._check().fetch(
            sql.CREATE_MANY, [convert.utf8(n.id) for n in news], [convert.utf8(n.name) for n in news],
            [n.args for n in news], [None if n.parent_id is None else convert.utf8(n.parent_id) for n in news],
            [n.now for n in news], [None if n.lease_owner is None else self._members.key(n.lease_owner) for n in news],
            [n.lease_s for n in news])
        return {row[0].decode(): (row[1], row[2]) for row in rows}

    async def claim(self, worker: str, names: Collection[str], limit: int, lease_s: float, now: float,
                    suspects: int = 1) -> list[Claim]:
        pool = self._check()
        self._now = now
        await self._members.reconnect()
        key = self._members.key(worker)
        wall = time.monotonic()
        sweep = wall - self._last_sweep >= self.sweep_interval
        if sweep:
            self._last_sweep = wall
        if names is not self._names_seen:
            self._names_seen, self._names_bytes = names, convert.names_array(names)
        rows = await self._retrying(lambda: pool.fetch(
            sql.CLAIM, key, self._names_bytes, limit, suspects, lease_s, now, sweep, self._ns))
        held = [convert.claim(r) for r in rows if r[11]]
        fresh = sorted((r for r in rows if not r[11]), key=lambda r: r[12])
        return held + [convert.claim(r) for r in fresh]

    async def next_ready(self, names: Collection[str]) -> float | None:
        return await self._check().fetchval(sql.NEXT_READY, convert.names_array(names))

    async def renew(self, worker: str, ids: Collection[str], lease_s: float) -> None:
        pool = self._check()
        key = self._members.get(worker)
        if key is None or not ids:
            return
        id_bytes = [convert.utf8(i) for i in ids]
        await self._retrying(lambda: pool.execute(sql.RENEW, key, id_bytes, lease_s))

    async def load(self, workflow_id: str) -> AsyncIterator[Sequence[StoredEntry]]:  # type: ignore[override]
        first = await self._first_chunk(workflow_id, None)
        if first is None:
            raise WorkflowNotFoundError(workflow_id)
        key, rows = first
        pool = self._check()
        while True:
            if rows:
                yield await self._entries(rows)
            if len(rows) < _CHUNK:
                return
            rows = await pool.fetch(sql.JOURNAL_CHUNK, key, rows[-1][0], _CHUNK)

    async def _first_chunks(self, batch: dict[str, None]) -> dict[str, tuple[int, list[Any]]]:
        found: dict[str, tuple[int, list[Any]]] = {}
        for row in await self._check().fetch(sql.FIRST_CHUNKS, [convert.utf8(i) for i in batch], _CHUNK):
            workflow_id = row[0].decode()
            entry = found.get(workflow_id)
            if entry is None:
                entry = found[workflow_id] = (row[1], [])
            if row[2] is not None:
                entry[1].append(row[2:])
        return found

    async def _entries(self, rows: list[Any]) -> list[StoredEntry]:
        labels = self._label_names
        unknown = {r[1] for r in rows if r[1] not in labels}
        if unknown:
            for label, kind, name in await self._check().fetch(sql.LABELS_BY_ID, list(unknown)):
                labels[label] = (kind, name.decode())
        return [_new_entry(StoredEntry, (r[0], *labels[r[1]], r[2] or b"", r[3], r[4])) for r in rows]

    async def commit(self, writes: Sequence[Write], now: float) -> list[str]:
        if not writes:
            return []
        self._check()
        self._now = now
        for write in writes:  # the whole group before anything is sent, as every store does
            check_write(write)
        async with self._writer_lock:
            if self._writer is None or self._writer.is_closed():
                self._writer = await self._connect()
            conn = self._writer
            missing = convert.missing_labels(writes, self._labels)
            if missing:
                await self._intern(conn, missing)
            if convert.append_only(writes):
                return [await self._append(conn, writes[0])]
            args = convert.pack_commit(writes, self._labels, now)
            codes = await self._retrying(lambda: conn.fetchval(sql.COMMIT, *args))
        outcomes = [convert.OUTCOMES[code] for code in codes]
        if any(o == OK and (w.release or w.creates or w.wake or w.cancel) for o, w in zip(outcomes, writes)):
            self._wake()
        return outcomes

    async def _append(self, conn: Any, write: Write) -> str:
        import asyncpg

        args = convert.pack_append(write, self._labels)
        try:
            status = await self._retrying(lambda: conn.execute(sql.APPEND, *args))
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "journal_pkey":
                raise
            return CONFLICT
        return OK if status.endswith(f" {len(write.entries)}") else FENCED  # "INSERT 0 <rows>"

    async def _intern(self, conn: Any, missing: list[tuple[str, str]]) -> None:
        for kind, name in missing:
            check_name(name, f"{kind} name in a journal entry", empty_ok=True)
        for _ in range(5):
            rows = await conn.fetch(sql.INTERN, [k for k, _ in missing], [convert.utf8(n) for _, n in missing])
            for label, kind, name in rows:
                pair = (kind, name.decode())
                self._labels[pair] = label
                self._label_names[label] = pair
            missing = [m for m in missing if m not in self._labels]
            if not missing:
                return
        raise RuntimeError(f"could not intern journal labels {missing!r} (this is a bug in durable)")

    # -- signals and control -----------------------------------------------------------------

    async def signal(self, workflow_id: str, name: str, payload: bytes, now: float) -> int:
        check_name(name, "signal name")
        pool = self._check()
        row = await pool.fetchrow(sql.SIGNAL, convert.utf8(workflow_id), now, convert.utf8(name), payload)
        if row is None:
            status = await pool.fetchval(sql.STATUS_OF, convert.utf8(workflow_id))
            if status is None:
                raise WorkflowNotFoundError(workflow_id)
            raise WorkflowClosedError(workflow_id, status)
        self._wake()
        return int(row[0])

    async def inbox(self, workflow_id: str) -> Inbox:
        box = await self._inbox(workflow_id, None)
        if box is None:
            raise WorkflowNotFoundError(workflow_id)
        return Inbox(list(box.signals), box.poke, box.cancel_requested)  # callers of one batch share `box`

    async def _inbox_many(self, batch: dict[str, None]) -> dict[str, Inbox]:
        rows = await self._check().fetch(sql.INBOX_MANY, [convert.utf8(i) for i in batch])
        boxes: dict[str, Inbox] = {}
        for row in rows:  # one snapshot: each workflow's poke count and signals agree
            workflow_id = row[0].decode()
            box = boxes.get(workflow_id)
            if box is None:
                box = boxes[workflow_id] = Inbox([], row[1], row[2])
            if row[3] is not None:
                box.signals.append(Signal(row[3], row[4].decode(), row[5]))
        return boxes

    async def cancel(self, workflow_id: str, now: float) -> bool:
        pool = self._check()
        row = await pool.fetchrow(sql.CANCEL, convert.utf8(workflow_id), now)
        if row is not None:
            self._wake()
            return True
        if await pool.fetchval(sql.STATUS_OF, convert.utf8(workflow_id)) is None:
            raise WorkflowNotFoundError(workflow_id)
        return False

    async def poke(self, workflow_id: str, now: float) -> None:
        """Make an unfinished workflow ready now, as a signal would, without one."""
        if await self._check().fetchrow(sql.POKE, convert.utf8(workflow_id), now) is not None:
            self._wake()

    async def unblock(self, ids: Collection[str] | None, names: Collection[str] | None, now: float) -> int:
        pool = self._check()
        id_bytes = convert.names_array(ids or ())
        name_bytes = convert.names_array(names or ())
        count = await self._retrying(lambda: pool.fetchval(sql.UNBLOCK, id_bytes, name_bytes, now))
        if count:
            await pool.execute(sql.NOTIFY)
            self._wake()
        return int(count)

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        return await self._get(workflow_id, None)

    async def _get_many(self, batch: dict[str, None]) -> dict[str, WorkflowRecord]:
        rows = await self._check().fetch(sql.GET_MANY, [convert.utf8(i) for i in batch])
        records = (convert.record(row) for row in rows)
        return {record.id: record for record in records}

    async def list(self, *, status: str | None = None, name: str | None = None, limit: int = 100,
                   after: str | None = None) -> list[WorkflowRecord]:
        query, params = convert.list_query(status, name, after)
        rows = await self._check().fetch(query, *params, limit)
        return [convert.record(r) for r in rows]

    async def wait_for_work(self, timeout: float) -> None:
        event = self._event
        if event is None:
            await asyncio.sleep(timeout)
            return
        await wait_event(event, timeout)
        event.clear()

    # -- key rotation -------------------------------------------------------------------------

    async def payloads(self, after: tuple[Any, ...] | None, limit: int) -> list[StoredPayload]:
        return await payloads.page(self._check(), after, limit)

    async def replace_payloads(self, changes: Sequence[tuple[StoredPayload, bytes]]) -> int:
        return await payloads.replace(self._check(), changes, self._retrying)

    # -- meta -------------------------------------------------------------------------------

    @staticmethod
    def _meta_key(key: str) -> str:
        if not isinstance(key, str) or "\x00" in key:
            raise ValueError(f"meta key {key!r} must be a str without NUL (PostgreSQL text cannot hold NUL)")
        return key

    async def get_meta(self, key: str) -> bytes | None:
        return await self._check().fetchval(sql.META_GET, self._meta_key(key))

    async def set_meta(self, key: str, value: bytes, *, replace: bool = False) -> bytes:
        pool = self._check()
        key = self._meta_key(key)
        if replace:
            return await pool.fetchval(sql.META_PUT, key, value)
        for _ in range(5):
            stored = await pool.fetchval(sql.META_ADD, key, value)
            if stored is None:  # someone else's value won; read it (their commit may postdate our snapshot)
                stored = await pool.fetchval(sql.META_GET, key)
            if stored is not None:
                return stored
        raise RuntimeError(f"meta key {key!r} is neither absent nor readable (this is a bug in durable)")
