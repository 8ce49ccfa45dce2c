"""The in-memory reference store: the whole protocol, nothing durable.

Useful for tests and as the model the database stores follow. One process,
one event loop; every method completes without awaiting anything, so a
commit is atomic.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from ..errors import WorkflowClosedError, WorkflowNotFoundError
from .types import (
    CONFLICT,
    FENCED,
    FINISHED,
    OK,
    Claim,
    Created,
    Inbox,
    NewWorkflow,
    Signal,
    StoredEntry,
    StoredPayload,
    WorkflowRecord,
    Write,
)
from .validate import check_name, check_new, check_write
from .wait import wait_event

__all__ = ["MemoryStore"]

_CHUNK = 512


class _Row:
    __slots__ = (
        "id", "name", "status", "run", "args", "result", "parent_id", "created_at", "updated_at",
        "ready_at", "blocked_reason", "cancel_requested", "journal", "pending", "poke", "seen_poke",
        "notified_poke", "lease_owner", "lease_token", "lease_expires", "attempts", "inbox",
    )

    def __init__(self, new: NewWorkflow) -> None:
        self.id = new.id
        self.name = new.name
        self.status = "running"
        self.run = 0
        self.args = new.args
        self.result: bytes | None = None
        self.parent_id = new.parent_id
        self.created_at = new.now
        self.updated_at = new.now
        self.ready_at: float | None = new.now
        self.blocked_reason: str | None = None
        self.cancel_requested = False
        self.journal: dict[int, StoredEntry] = {}
        self.pending: bytes | None = None
        self.poke = 0
        self.seen_poke = 0
        self.notified_poke = 0
        self.lease_owner: str | None = None
        self.lease_token = 0
        self.lease_expires: float | None = None
        self.attempts = 0
        self.inbox: list[Signal] = []

    def record(self) -> WorkflowRecord:
        return WorkflowRecord(
            id=self.id, name=self.name, status=self.status, run=self.run, args=self.args,
            result=self.result, parent_id=self.parent_id, created_at=self.created_at,
            updated_at=self.updated_at, ready_at=self.ready_at, blocked_reason=self.blocked_reason,
            cancel_requested=self.cancel_requested, lease_owner=self.lease_owner,
            lease_expires=self.lease_expires, attempts=self.attempts, token=self.lease_token, pending=self.pending,
        )

    def claim(self, held: bool) -> Claim:
        return Claim(
            id=self.id, name=self.name, run=self.run, token=self.lease_token, status=self.status,
            args=self.args, pending=self.pending, poke=self.poke,
            cancel_requested=self.cancel_requested, attempts=self.attempts, held=held,
            parent_id=self.parent_id,
        )

    def poked(self, now: float) -> None:
        self.poke += 1
        if self.status not in FINISHED and self.status != "blocked":
            self.ready_at = now


class MemoryStore:
    """Keeps everything in dictionaries; `Engine("memory:")` uses one."""

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._workers: dict[str, frozenset[str]] = {}
        self._meta: dict[str, bytes] = {}
        self._signal_seq = 0
        self._event: asyncio.Event | None = None
        self._pid = os.getpid()

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        self._event = asyncio.Event()

    async def close(self) -> None:
        self._wake()

    async def register_worker(self, worker: str, names: Collection[str], now: float) -> None:
        check_name(worker, "worker id")
        self._workers[worker] = frozenset(names)

    async def unregister_worker(self, worker: str) -> None:
        self._workers.pop(worker, None)
        for row in self._rows.values():
            if row.lease_owner == worker:
                row.lease_owner = None
                row.lease_expires = None
                row.attempts = 0  # a clean stop is not a crash
        self._wake()

    def kill_worker(self, worker: str) -> None:
        """Forget a worker as if its process died, leaving its leases to be taken over."""
        self._workers.pop(worker, None)
        self._wake()

    async def live_names(self) -> set[str]:
        names: set[str] = set()
        for registered in self._workers.values():
            names |= registered
        return names

    # -- workflows ---------------------------------------------------------

    async def create(self, new: NewWorkflow) -> Created:
        check_new(new)
        row = self._rows.get(new.id)
        if row is not None:
            return Created(row.record(), created=False)
        row = self._insert(new)
        token = None
        if new.lease_owner is not None:
            row.lease_owner = new.lease_owner
            row.lease_token = token = 1
            row.lease_expires = time.time() + new.lease_s
            row.attempts = 1
        else:
            self._wake()
        return Created(row.record(), created=True, token=token)

    def _insert(self, new: NewWorkflow) -> _Row:
        row = _Row(new)
        self._rows[new.id] = row
        return row

    async def claim(
        self, worker: str, names: Collection[str], limit: int, lease_s: float, now: float, suspects: int = 1
    ) -> list[Claim]:
        wall = time.time()
        workers = self._workers
        ready = []
        held = []
        for row in self._rows.values():
            owner = row.lease_owner
            if owner == worker and owner in workers and (row.lease_expires or 0) >= wall:
                if row.poke > row.seen_poke and row.poke > row.notified_poke:
                    row.notified_poke = row.poke
                    held.append(row.claim(held=True))
                continue
            if row.ready_at is None or row.ready_at > now or row.name not in names:
                continue
            if owner is None or owner not in workers or (row.lease_expires or 0) < wall:
                ready.append(row)
        ready.sort(key=lambda r: r.ready_at)  # type: ignore[arg-type,return-value]
        claims = held
        chosen = []
        for row in ready:
            if len(chosen) >= limit:
                break
            if row.attempts > 1:
                if suspects <= 0:
                    continue
                suspects -= 1
            chosen.append(row)
        for row in chosen:
            row.lease_owner = worker
            row.lease_token += 1
            row.lease_expires = wall + lease_s
            row.attempts += 1
            row.notified_poke = row.poke
            claims.append(row.claim(held=False))
        return claims

    async def next_ready(self, names: Collection[str]) -> float | None:
        times = [
            r.ready_at for r in self._rows.values()
            if r.ready_at is not None and r.lease_owner is None and r.name in names
        ]
        return min(times) if times else None

    async def renew(self, worker: str, ids: Collection[str], lease_s: float) -> None:
        expires = time.time() + lease_s
        for workflow_id in ids:
            row = self._rows.get(workflow_id)
            if row is not None and row.lease_owner == worker:
                row.lease_expires = expires

    async def load(self, workflow_id: str) -> AsyncIterator[Sequence[StoredEntry]]:  # type: ignore[override]
        row = self._rows.get(workflow_id)
        if row is None:
            raise WorkflowNotFoundError(workflow_id)
        entries = [row.journal[p] for p in sorted(row.journal)]
        for start in range(0, len(entries), _CHUNK):
            yield entries[start : start + _CHUNK]

    async def commit(self, writes: Sequence[Write], now: float) -> list[str]:
        return self.commit_sync(writes, now)

    def commit_sync(self, writes: Sequence[Write], now: float) -> list[str]:
        """`commit` without awaiting: the engine uses it to skip a needless event-loop hop."""
        for write in writes:  # all before anything changes: a refused commit leaves no trace
            check_write(write)
        outcomes = []
        woke = False
        for write in writes:
            row = self._rows.get(write.workflow_id)
            if row is None or row.lease_token != write.token or row.lease_owner is None:
                outcomes.append(FENCED)
                continue
            journal = row.journal
            if any(e[0] in journal for e in write.entries):
                outcomes.append(CONFLICT)
                continue
            if not write.touch:  # only entries: the row itself is as the last write left it
                for entry in write.entries:
                    journal[entry[0]] = entry
                outcomes.append(OK)
                continue
            self._apply(row, write, now)
            outcomes.append(OK)
            woke = woke or write.release or bool(write.creates or write.wake or write.cancel)
        if woke:
            self._wake()
        return outcomes

    def _apply(self, row: _Row, write: Write, now: float) -> None:
        for entry in write.entries:
            row.journal[entry.position] = entry
        if write.consumed:
            gone = set(write.consumed)
            row.inbox = [s for s in row.inbox if s.seq not in gone]
        row.status = write.status
        row.pending = write.pending
        row.result = write.result
        row.blocked_reason = write.blocked_reason
        row.ready_at = now if row.poke > write.seen_poke and write.status not in FINISHED else write.ready_at
        if write.status == "blocked":
            row.ready_at = None
        row.seen_poke = max(row.seen_poke, write.seen_poke)
        if write.clear_cancel and row.poke <= write.seen_poke:
            row.cancel_requested = False  # unless another cancel came after the one delivered
        if write.new_run is not None:
            row.run += 1
            row.args = write.new_run
            row.journal = {}
            row.pending = None
            row.result = None
        if write.release:
            row.lease_owner = None
            row.lease_expires = None
        row.attempts = 0
        row.updated_at = now
        for new in write.creates:
            if new.id not in self._rows:
                self._insert(new)
        for target in write.wake:
            other = self._rows.get(target)
            if other is not None:
                other.poked(now)
        for target in write.cancel:
            other = self._rows.get(target)
            if other is not None and other.status not in FINISHED:
                other.cancel_requested = True
                other.poked(now)

    # -- signals and control -------------------------------------------------

    async def signal(self, workflow_id: str, name: str, payload: bytes, now: float) -> int:
        check_name(name, "signal name")
        row = self._rows.get(workflow_id)
        if row is None:
            raise WorkflowNotFoundError(workflow_id)
        if row.status in FINISHED:
            raise WorkflowClosedError(workflow_id, row.status)
        self._signal_seq += 1
        row.inbox.append(Signal(self._signal_seq, name, payload))
        row.poked(now)
        self._wake()
        return self._signal_seq

    async def inbox(self, workflow_id: str) -> Inbox:
        row = self._rows.get(workflow_id)
        if row is None:
            raise WorkflowNotFoundError(workflow_id)
        return Inbox(list(row.inbox), row.poke, row.cancel_requested)

    async def cancel(self, workflow_id: str, now: float) -> bool:
        row = self._rows.get(workflow_id)
        if row is None:
            raise WorkflowNotFoundError(workflow_id)
        if row.status in FINISHED:
            return False
        row.cancel_requested = True
        row.poked(now)
        self._wake()
        return True

    async def poke(self, workflow_id: str, now: float) -> None:
        """Make a running or waiting workflow ready now, as a signal would, without one.

        Optional in a store: the engine uses it to have a workflow whose replay
        failed at warm-up claimed, so its block is recorded at once.
        """
        row = self._rows.get(workflow_id)
        if row is not None:
            row.poked(now)
            self._wake()

    async def unblock(self, ids: Collection[str] | None, names: Collection[str] | None, now: float) -> int:
        count = 0
        for row in self._rows.values():
            if row.status != "blocked":
                continue
            if (ids is not None and row.id in ids) or (names is not None and row.name in names):
                row.status = "running"
                row.blocked_reason = None
                row.ready_at = now
                row.attempts = 0
                count += 1
        if count:
            self._wake()
        return count

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        row = self._rows.get(workflow_id)
        return row.record() if row is not None else None

    async def list(
        self, *, status: str | None = None, name: str | None = None, limit: int = 100,
        after: str | None = None,
    ) -> list[WorkflowRecord]:
        rows = sorted(
            (r for r in self._rows.values()
             if (status is None or r.status == status) and (name is None or r.name == name)
             and (after is None or r.id > after)),
            key=lambda r: r.id,
        )
        return [r.record() for r in rows[:limit]]

    async def wait_for_work(self, timeout: float) -> None:
        event = self._event
        if event is None:
            await asyncio.sleep(timeout)
            return
        if not event.is_set():
            await wait_event(event, timeout)
        event.clear()

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()

    async def payloads(self, after: tuple[Any, ...] | None, limit: int) -> list[StoredPayload]:
        found: list[StoredPayload] = []
        for key in sorted(self._meta):
            found.append(StoredPayload((0, key, 0), "meta", self._meta[key], kind=key))
        for row in sorted(self._rows.values(), key=lambda r: r.id):
            common = {"workflow_id": row.id, "workflow": row.name, "run": row.run, "status": row.status}
            for index, slot in enumerate(("args", "result", "pending")):
                data = getattr(row, slot)
                if data is not None:
                    found.append(StoredPayload((1, row.id, index), slot, data, **common))
            for position in sorted(row.journal):
                e = row.journal[position]
                found.append(StoredPayload((2, row.id, position), "entry", e.payload, position=position,
                                           kind=e.kind, failed=bool(e.failed), **common))
            for signal in row.inbox:
                found.append(StoredPayload((3, row.id, signal.seq), "signal", signal.payload, kind=signal.name,
                                           **common))
        found.sort(key=lambda p: p.where)
        if after is not None:
            found = [p for p in found if p.where > after]
        return found[:limit]

    async def replace_payloads(self, changes: Sequence[tuple[StoredPayload, bytes]]) -> int:
        replaced = 0
        for old, new in changes:
            table, first, second = old.where
            if table == 0:
                if self._meta.get(first) == old.data:
                    self._meta[first] = new
                    replaced += 1
                continue
            row = self._rows.get(first)
            if row is None:
                continue
            if table == 1:
                slot = ("args", "result", "pending")[second]
                if getattr(row, slot) == old.data:
                    setattr(row, slot, new)
                    replaced += 1
            elif table == 2:
                e = row.journal.get(second)
                if e is not None and e.payload == old.data:
                    row.journal[second] = e._replace(payload=new)
                    replaced += 1
            else:
                for i, signal in enumerate(row.inbox):
                    if signal.seq == second and signal.payload == old.data:
                        row.inbox[i] = Signal(signal.seq, signal.name, new)
                        replaced += 1
        return replaced

    async def get_meta(self, key: str) -> bytes | None:
        return self._meta.get(key)

    async def set_meta(self, key: str, value: bytes, *, replace: bool = False) -> bytes:
        if replace or key not in self._meta:
            self._meta[key] = value
        return self._meta[key]
