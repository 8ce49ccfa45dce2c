"""Between Python and rows: ids and names as UTF-8 bytes, records, claims, commit arguments."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from ..types import CONFLICT, FENCED, OK, Claim, NewWorkflow, WorkflowRecord, Write
from .sql import RECORD

__all__ = [
    "OUTCOMES", "append_only", "claim", "list_query", "missing_labels", "names_array", "new_record", "pack_append",
    "pack_commit", "record", "utf8",
]


def utf8(value: str) -> bytes:
    """How ids and names are stored. Lone surrogates (refused by validate.py before anything is
    stored) still encode, so a lookup with one simply finds nothing."""
    return value.encode("utf-8", "surrogatepass")


def text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8")


def for_people(message: str | None) -> str | None:
    """A message (a blocked reason) as PostgreSQL text can hold it: NUL and lone surrogates escaped."""
    if message is None:
        return None
    return message.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def record(row: Sequence[Any]) -> WorkflowRecord:
    return WorkflowRecord(
        id=row[0].decode(), name=row[1].decode(), status=row[2], run=row[3], args=row[4], result=row[5],
        parent_id=text(row[6]), created_at=row[7], updated_at=row[8], ready_at=row[9],
        blocked_reason=row[10], cancel_requested=row[11], lease_owner=text(row[12]), lease_expires=row[13],
        attempts=row[14], token=row[15], pending=row[16],
    )


def new_record(new: NewWorkflow, lease_expires: float | None) -> WorkflowRecord:
    """The record `create` just inserted, without reading it back."""
    leased = new.lease_owner is not None
    return WorkflowRecord(
        id=new.id, name=new.name, status="running", run=0, args=new.args, result=None,
        parent_id=new.parent_id, created_at=new.now, updated_at=new.now, ready_at=new.now,
        blocked_reason=None, cancel_requested=False, lease_owner=new.lease_owner,
        lease_expires=lease_expires, attempts=1 if leased else 0, token=1 if leased else 0, pending=None,
    )


def claim(row: Sequence[Any]) -> Claim:
    return Claim(
        id=row[0].decode(), name=row[1].decode(), run=row[2], token=row[3], status=row[4], args=row[5],
        pending=row[6], poke=row[7], cancel_requested=row[8], attempts=row[9], held=row[11],
        parent_id=text(row[10]),
    )


OUTCOMES = (FENCED, OK, CONFLICT)  # commit_writes' codes 0, 1, 2


def pack_commit(writes: Sequence[Write], labels: dict[tuple[str, str], int], now: float) -> list[Any]:
    """The arguments of `commit_writes` for these writes (every label already interned)."""
    w_id: list[bytes] = []
    w_token: list[int] = []
    w_round: list[int] = []
    w_count: list[int] = []
    w_touch: list[bool] = []
    w_status: list[str] = []
    w_ready: list[float | None] = []
    w_pending: list[bytes | None] = []
    w_result: list[bytes | None] = []
    w_seen: list[int] = []
    w_release: list[bool] = []
    w_reason: list[str | None] = []
    w_clear: list[bool] = []
    w_new_run: list[bytes | None] = []
    e_w: list[int] = []
    e_pos: list[int] = []
    e_label: list[int] = []
    e_digest: list[bytes | None] = []
    e_failed: list[bool] = []
    e_payload: list[bytes] = []
    c_w: list[int] = []
    c_seq: list[int] = []
    n_w: list[int] = []
    n_id: list[bytes] = []
    n_name: list[bytes] = []
    n_args: list[bytes] = []
    n_at: list[float] = []
    n_parent: list[bytes | None] = []
    k_w: list[int] = []
    k_id: list[bytes] = []
    x_w: list[int] = []
    x_id: list[bytes] = []
    rounds: dict[str, int] = {}
    any_touch = any_new_run = False
    for index, write in enumerate(writes, 1):
        wid = write.workflow_id
        rnd = rounds[wid] = rounds.get(wid, 0) + 1
        w_id.append(utf8(wid))
        w_token.append(write.token)
        w_round.append(rnd)
        w_count.append(len(write.entries))
        w_touch.append(write.touch)
        any_touch = any_touch or write.touch
        w_status.append(write.status)
        w_ready.append(write.ready_at)
        w_pending.append(write.pending)
        w_result.append(write.result)
        w_seen.append(write.seen_poke)
        w_release.append(write.release)
        w_reason.append(for_people(write.blocked_reason))
        w_clear.append(write.clear_cancel)
        w_new_run.append(write.new_run)
        any_new_run = any_new_run or write.new_run is not None
        for entry in write.entries:
            e_w.append(index)
            e_pos.append(entry[0])
            e_label.append(labels[entry[1], entry[2]])
            e_digest.append(entry[3] or None)
            e_failed.append(entry[4])
            e_payload.append(entry[5])
        for seq in write.consumed:
            c_w.append(index)
            c_seq.append(seq)
        for new in write.creates:
            n_w.append(index)
            n_id.append(utf8(new.id))
            n_name.append(utf8(new.name))
            n_args.append(new.args)
            n_at.append(new.now)
            n_parent.append(None if new.parent_id is None else utf8(new.parent_id))
        for target in write.wake:
            k_w.append(index)
            k_id.append(utf8(target))
        for target in write.cancel:
            x_w.append(index)
            x_id.append(utf8(target))
    return [
        w_id, w_token, w_round, w_count, w_touch, w_status, w_ready, w_pending, w_result, w_seen, w_release,
        w_reason, w_clear, w_new_run, e_w, e_pos, e_label, e_digest, e_failed, e_payload, c_w, c_seq,
        n_w, n_id, n_name, n_args, n_at, n_parent, k_w, k_id, x_w, x_id,
        now, max(rounds.values(), default=0), any_touch, any_new_run,
    ]


def append_only(writes: Sequence[Write]) -> bool:
    """True for one write that only adds journal entries (the statement APPEND applies it)."""
    if len(writes) != 1:
        return False
    w = writes[0]
    return (bool(w.entries) and not w.touch and not w.consumed and not w.creates and not w.wake
            and not w.cancel and w.new_run is None)


def pack_append(write: Write, labels: dict[tuple[str, str], int]) -> list[Any]:
    entries = write.entries
    return [utf8(write.workflow_id), write.token, [e[0] for e in entries], [labels[e[1], e[2]] for e in entries],
            [e[3] or None for e in entries], [e[4] for e in entries], [e[5] for e in entries]]


def missing_labels(writes: Sequence[Write], labels: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    missing: dict[tuple[str, str], None] = {}
    for write in writes:
        for entry in write.entries:
            key = (entry[1], entry[2])
            if key not in labels:
                missing[key] = None
    return list(missing)


def list_query(status: str | None, name: str | None, after: str | None) -> tuple[str, list[Any]]:
    """`list`'s statement and parameters; the limit is the last parameter."""
    clauses: list[str] = []
    params: list[Any] = []
    for condition, value in (("w.status =", status), ("w.name =", None if name is None else utf8(name)),
                             ("w.id >", None if after is None else utf8(after))):
        if value is not None:
            params.append(value)
            clauses.append(f"{condition} ${len(params)}")
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    return f"SELECT {RECORD} {where}ORDER BY w.id LIMIT ${len(params) + 1}", params


def names_array(names: Collection[str]) -> list[bytes]:
    return [utf8(n) for n in names]
