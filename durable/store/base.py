"""The Store protocol: everything the engine needs from a database.

Stores keep bytes and do not judge: payloads arrive serialized and encoded,
and determinism, retries and policy stay in the engine. Times are floats of
seconds since the epoch, passed in by the engine (its clock may be virtual);
only lease expiry uses the store's own wall clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any, Protocol, runtime_checkable

from .types import Claim, Created, Inbox, NewWorkflow, StoredEntry, StoredPayload, WorkflowRecord, Write

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    async def open(self) -> None:
        """Connect and create or migrate the schema. Called once by the engine."""

    async def close(self) -> None: ...

    async def register_worker(self, worker: str, names: Collection[str], now: float) -> None:
        """Announce a live worker and the workflow names it runs.

        Liveness is tied to something released when the process dies (a file
        lock, a connection), so a dead worker's leases are taken over at once.
        """

    async def unregister_worker(self, worker: str) -> None:
        """Release every lease the worker holds and forget it."""

    async def live_names(self) -> set[str]:
        """Workflow names some live worker has registered."""

    async def create(self, new: NewWorkflow) -> Created:
        """Create a workflow, idempotent by id: an existing id returns the existing record."""

    async def claim(
        self, worker: str, names: Collection[str], limit: int, lease_s: float, now: float, suspects: int = 1
    ) -> list[Claim]:
        """Lease up to `limit` ready workflows of `names` (ready_at <= now, lease free,
        expired, or held by a dead worker), each with a fresh fencing token; plus
        workflows this worker holds that were poked since it last looked (`held`).

        At most `suspects` of them may be workflows whose last two claims
        ended without any write (attempts > 1: their worker died twice in a
        row, perhaps because of them); the engine runs those one at a time to
        find the culprit. After one crash everything recovers at once: a
        crash takes down every run in flight, and most were bystanders.
        """

    async def next_ready(self, names: Collection[str]) -> float | None:
        """The earliest ready_at among unleased workflows of `names`, if any."""

    async def renew(self, worker: str, ids: Collection[str], lease_s: float) -> None:
        """Extend the leases `worker` holds on `ids` (the runs it still drives)."""

    def load(self, workflow_id: str) -> AsyncIterator[Sequence[StoredEntry]]:
        """The current run's journal in position order, in chunks (never one big list)."""

    async def commit(self, writes: Sequence[Write], now: float) -> list[str]:
        """Apply many workflows' writes in one transaction (group commit).

        Each write is applied whole or not at all; returns OK, FENCED or
        CONFLICT for each, in order.
        """

    async def signal(self, workflow_id: str, name: str, payload: bytes, now: float) -> int:
        """Queue a signal, durably; poke the workflow. Returns its sequence number.

        Raises WorkflowNotFoundError, or WorkflowClosedError once it finished.
        """

    async def inbox(self, workflow_id: str) -> Inbox:
        """Signals not yet consumed (oldest first), with the poke count and cancel flag."""

    async def cancel(self, workflow_id: str, now: float) -> bool:
        """Ask a running workflow to cancel and poke it; False if already finished."""

    async def poke(self, workflow_id: str, now: float) -> None:
        """Make an unfinished workflow ready now, as a signal would, without one (no error if unknown)."""

    async def unblock(self, ids: Collection[str] | None, names: Collection[str] | None, now: float) -> int:
        """Make blocked workflows ready again (by id, or all of `names`); the count."""

    async def get(self, workflow_id: str) -> WorkflowRecord | None: ...

    async def list(
        self, *, status: str | None = None, name: str | None = None, limit: int = 100,
        after: str | None = None,
    ) -> list[WorkflowRecord]:
        """Workflows ordered by id, `after` the given id (for paging)."""

    async def wait_for_work(self, timeout: float) -> None:
        """Return after `timeout` seconds, or earlier when there may be new work."""

    async def payloads(self, after: tuple[Any, ...] | None, limit: int) -> list[StoredPayload]:
        """Up to `limit` stored payloads after `after` (a previous one's `where`), in a stable order.

        Paging on from each page's last `where` visits every payload once; a page is short only at the end."""

    async def replace_payloads(self, changes: Sequence[tuple[StoredPayload, bytes]]) -> int:
        """Put new bytes where each payload still holds the bytes it was read with; the count replaced."""

    async def get_meta(self, key: str) -> bytes | None: ...

    async def set_meta(self, key: str, value: bytes, *, replace: bool = False) -> bytes:
        """Store `value` under `key` unless one exists (or `replace`); the stored value."""
