"""The records that cross the Store protocol. Payloads are opaque bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..journal import StoredEntry

__all__ = [
    "ACTIVE",
    "CONFLICT",
    "Claim",
    "Created",
    "FENCED",
    "FINISHED",
    "Inbox",
    "NewWorkflow",
    "OK",
    "Signal",
    "STATUSES",
    "StoredEntry",
    "StoredPayload",
    "WorkflowRecord",
    "Write",
]

STATUSES = ("running", "waiting", "completed", "failed", "cancelled", "blocked")
ACTIVE = frozenset({"running", "waiting", "blocked"})
FINISHED = frozenset({"completed", "failed", "cancelled"})

# Outcomes of one Write within a commit
OK = "ok"
FENCED = "fenced"  # the lease moved on; nothing of this write was applied
CONFLICT = "conflict"  # a journal position was already taken; nothing applied



@dataclass(slots=True)
class NewWorkflow:
    """A workflow to create. With `lease_owner` set it is created already claimed."""

    id: str
    name: str
    args: bytes
    now: float
    parent_id: str | None = None
    lease_owner: str | None = None
    lease_s: float = 0.0


@dataclass(slots=True)
class WorkflowRecord:
    """A workflow as stored: its state, never its journal."""

    id: str
    name: str
    status: str
    run: int
    args: bytes
    result: bytes | None  # the result, or the failure record, once finished
    parent_id: str | None
    created_at: float
    updated_at: float
    ready_at: float | None  # when it next needs a worker (None: only when poked)
    blocked_reason: str | None
    cancel_requested: bool
    lease_owner: str | None
    lease_expires: float | None
    attempts: int  # claims since the last recorded progress
    token: int = 0  # the current (or last) lease's fencing token
    pending: bytes | None = None  # the engine's encoded timers and retry state


@dataclass(slots=True)
class Created:
    record: WorkflowRecord
    created: bool  # False: the id existed and `record` is the existing workflow
    token: int | None = None  # fencing token when created already claimed


@dataclass(slots=True)
class Claim:
    """A workflow this worker may advance until its lease moves on.

    `held` is True when this worker already held the lease and the claim
    only reports that something (a signal, a cancel) poked the workflow.
    """

    id: str
    name: str
    run: int
    token: int
    status: str
    args: bytes
    pending: bytes | None
    poke: int
    cancel_requested: bool
    attempts: int
    held: bool = False
    parent_id: str | None = None


@dataclass(slots=True)
class Signal:
    seq: int
    name: str
    payload: bytes


@dataclass(slots=True)
class Inbox:
    """Unconsumed signals (oldest first) and the poke state, read together."""

    signals: list[Signal]
    poke: int
    cancel_requested: bool


@dataclass(slots=True)
class StoredPayload:
    """One payload as stored, with what its codec context is made of (for re-encoding).

    `slot` is "meta", "args", "result", "pending", "entry" or "signal";
    `where` is the store's own address of it, in paging order.
    """

    where: tuple[Any, ...]
    slot: str
    data: bytes
    workflow_id: str | None = None
    workflow: str | None = None
    run: int = 0
    status: str | None = None
    position: int | None = None
    kind: str = ""  # the entry kind, the signal name, or the meta key
    failed: bool = False


@dataclass(slots=True)
class Write:
    """Everything one workflow changes in one commit, applied all or nothing.

    Refused (FENCED) unless `token` is still the workflow's lease token.
    With `touch` False the workflow's own state is unchanged since the last
    write of this lease (only journal entries are added), which lets a
    database store skip rewriting the workflow row on every step.
    """

    workflow_id: str
    token: int
    status: str
    ready_at: float | None
    entries: Sequence[StoredEntry] = ()
    pending: bytes | None = None
    result: bytes | None = None
    consumed: Sequence[int] = ()  # inbox seqs consumed by entries of this write
    seen_poke: int = 0  # pokes up to here are handled; a later one makes it ready now
    release: bool = False  # give up the lease (the workflow parks or finishes)
    blocked_reason: str | None = None
    creates: Sequence[NewWorkflow] = ()  # child workflows, created unless they exist
    wake: Sequence[str] = ()  # workflows to poke (a parent whose child finished)
    cancel: Sequence[str] = ()  # workflows to ask to cancel (children of a cancelled run)
    new_run: bytes | None = None  # continue_as_new: the next run's args; its journal starts empty
    clear_cancel: bool = False  # a cancel request was delivered
    touch: bool = True  # False: only `entries` (and nothing else) changed
