"""The SQL of the SQLite store, as plain functions of a connection.

Each runs in the writer or reader thread (see threads.py). Keeping them
free of asyncio makes the transaction boundaries easy to see.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import WorkflowClosedError, WorkflowNotFoundError
from ..types import (
    CONFLICT,
    FENCED,
    FINISHED,
    OK,
    Claim,
    NewWorkflow,
    Signal,
    StoredEntry,
    StoredPayload,
    WorkflowRecord,
    Write,
)

_new_entry = tuple.__new__

RECORD_COLUMNS = (
    "id, name, status, run, args, result, parent_id, created_at, updated_at, ready_at, blocked_reason, "
    "cancel_requested, lease_owner, lease_expires, attempts, lease_token, pending"
)
_FINISHED_SQL = "('completed', 'failed', 'cancelled')"
CLAIM_COLUMNS = "id, name, run, lease_token, status, args, pending, poke, cancel_requested, attempts, parent_id"


_WRITE_SQL = """
UPDATE workflows SET
    status = ?1,
    ready_at = CASE WHEN poke > ?2 AND ?3 THEN ?4 ELSE ?5 END,
    pending = ?6,
    result = ?7,
    blocked_reason = ?8,
    seen_poke = max(seen_poke, ?2),
    cancel_requested = CASE WHEN ?9 AND poke <= ?2 THEN 0 ELSE cancel_requested END,
    attempts = 0,
    updated_at = ?4,
    lease_owner = CASE WHEN ?10 THEN NULL ELSE lease_owner END,
    lease_expires = CASE WHEN ?10 THEN NULL ELSE lease_expires END
WHERE key = ?11 AND lease_token = ?12 AND lease_owner IS NOT NULL
RETURNING key
"""

# Under the write lock a read is as good as an update for fencing.
_FENCE_SQL = "SELECT key FROM workflows WHERE key = ? AND lease_token = ? AND lease_owner IS NOT NULL"
_INSERT_ONE = "INSERT INTO journal (wf, position, label, digest, failed, payload) VALUES (?, ?, ?, ?, ?, ?)"

_WAKE = "ready_at = CASE WHEN status IN ('running', 'waiting') THEN ? ELSE ready_at END"
POKE_BY_ID = f"UPDATE workflows SET poke = poke + 1, {_WAKE} WHERE id = ? AND status NOT IN {_FINISHED_SQL}"
_POKE_BY_KEY = f"UPDATE workflows SET poke = poke + 1, {_WAKE} WHERE key = ?"
_CANCEL_BY_ID = (f"UPDATE workflows SET cancel_requested = 1, poke = poke + 1, {_WAKE} "
                 f"WHERE id = ? AND status NOT IN {_FINISHED_SQL}")


def record(row: Sequence[Any]) -> WorkflowRecord:
    return WorkflowRecord(
        id=row[0], name=row[1], status=row[2], run=row[3], args=row[4], result=row[5], parent_id=row[6],
        created_at=row[7], updated_at=row[8], ready_at=row[9], blocked_reason=row[10],
        cancel_requested=bool(row[11]), lease_owner=row[12], lease_expires=row[13], attempts=row[14],
        token=row[15], pending=row[16],
    )


def claim(row: Sequence[Any], held: bool) -> Claim:
    return Claim(
        id=row[0], name=row[1], run=row[2], token=row[3], status=row[4], args=row[5], pending=row[6],
        poke=row[7], cancel_requested=bool(row[8]), attempts=row[9], held=held, parent_id=row[10],
    )


def insert_workflow(conn: sqlite3.Connection, new: NewWorkflow, lease_expires: float | None) -> int | None:
    """Insert unless the id exists; the new row's key, or None."""
    token = 1 if new.lease_owner is not None else 0
    row = conn.execute(
        "INSERT INTO workflows (id, name, status, args, parent_id, created_at, updated_at, ready_at, "
        "lease_owner, lease_token, lease_expires, attempts) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING RETURNING key",
        (new.id, new.name, new.args, new.parent_id, new.now, new.now, new.now, new.lease_owner, token,
         lease_expires, 1 if new.lease_owner is not None else 0),
    ).fetchone()
    return None if row is None else row[0]


def get_record(conn: sqlite3.Connection, workflow_id: str) -> WorkflowRecord | None:
    row = conn.execute(f"SELECT {RECORD_COLUMNS} FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
    return None if row is None else record(row)


def apply_write(conn: sqlite3.Connection, write: Write, now: float, key: int | None,
                label: Callable[[str, str], int]) -> str:
    """One workflow's write, whole or not at all.

    The journal rows go in first, in one statement (atomic on its own): a
    taken position fails it before anything else changed. Then the fenced
    update; if the lease moved on, the rows just added are taken out again.
    No savepoint is needed on this path, which runs once per step.
    """
    if key is None:
        return FENCED
    entries = write.entries
    execute = conn.execute
    if entries:
        rows = [(key, e[0], label(e[1], e[2]), e[3] or None, 1 if e[4] else 0, e[5]) for e in entries]
        try:
            if len(rows) == 1:
                execute(_INSERT_ONE, rows[0])
            else:
                execute(_INSERT_ONE[: _INSERT_ONE.index("VALUES") + 7] + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(rows)),
                        [v for row in rows for v in row])
        except sqlite3.IntegrityError:
            return CONFLICT
    status = write.status
    row = execute(_WRITE_SQL, (
        status, write.seen_poke, status not in FINISHED and status != "blocked", now, write.ready_at,
        write.pending, write.result, write.blocked_reason, write.clear_cancel, write.release,
        key, write.token,
    )).fetchone() if write.touch else execute(_FENCE_SQL, (key, write.token)).fetchone()
    if row is None:
        if entries:
            conn.executemany("DELETE FROM journal WHERE wf = ? AND position = ?", [(key, e[0]) for e in entries])
        return FENCED
    if write.consumed:
        conn.executemany("DELETE FROM inbox WHERE wf = ? AND seq = ?", [(key, s) for s in write.consumed])
    if write.new_run is not None:
        execute("DELETE FROM journal WHERE wf = ?", (key,))
        execute("UPDATE workflows SET run = run + 1, args = ?, pending = NULL, result = NULL "
                "WHERE key = ?", (write.new_run, key))
    for new in write.creates:  # ids and names checked before the transaction (validate.check_write)
        insert_workflow(conn, new, None)
    for target in write.wake:
        execute(POKE_BY_ID, (now, target))
    for target in write.cancel:
        execute(_CANCEL_BY_ID, (now, target))
    return OK


def append_many(conn: sqlite3.Connection, writes: Sequence[Write], keys: Sequence[int | None],
                indexes: list[int], label: Callable[[str, str], int], outcomes: list[str | None]) -> None:
    """Writes that only add journal entries (touch False), fenced and inserted together.

    One read checks every lease and one statement inserts every row: the
    common step of many concurrent workflows costs a few microseconds. If a
    position is taken, nothing is inserted here and each write goes the
    one-by-one way, which says which one conflicts.
    """
    tokens: dict[int, int] = {}
    for start in range(0, len(indexes), 500):
        chunk = [keys[i] for i in indexes[start : start + 500]]
        tokens.update(conn.execute(
            f"SELECT key, lease_token FROM workflows WHERE lease_owner IS NOT NULL "
            f"AND key IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
    rows = []
    fenced = []
    for i in indexes:
        write, key = writes[i], keys[i]
        if tokens.get(key) != write.token:  # type: ignore[arg-type]
            fenced.append(i)
            continue
        rows.extend((key, e[0], label(e[1], e[2]), e[3] or None, 1 if e[4] else 0, e[5]) for e in write.entries)
    conn.execute("SAVEPOINT appends")
    try:
        conn.executemany(_INSERT_ONE, rows)
    except sqlite3.IntegrityError:
        conn.execute("ROLLBACK TO appends")
        conn.execute("RELEASE appends")
        return
    conn.execute("RELEASE appends")
    for i in indexes:
        outcomes[i] = OK
    for i in fenced:
        outcomes[i] = FENCED


_SLOTS = ("args", "result", "pending")


def payload_page(conn: sqlite3.Connection, after: tuple[Any, ...] | None, limit: int) -> list[StoredPayload]:
    """Stored payloads in (table, key, part) order: meta, workflow columns, journal, inbox."""
    table, first, second = after if after is not None else (-1, None, -1)
    out: list[StoredPayload] = []
    if table <= 0:
        start = first if table == 0 else ""
        for key, value in conn.execute("SELECT key, value FROM meta WHERE key > ? ORDER BY key LIMIT ?",
                                       (start, limit)):
            out.append(StoredPayload((0, key, 0), "meta", value, kind=key))
    if len(out) < limit and table <= 1:
        start, part = (first, second) if table == 1 else (-1, -1)
        # Every row past the cursor has args (NOT NULL), so `room` of them fill the page; the row the
        # cursor is in may have nothing left after its column, so it is asked for as one more.
        room = limit - len(out) + 1
        for row in conn.execute("SELECT key, id, name, run, status, args, result, pending FROM workflows "
                                "WHERE key >= ? ORDER BY key LIMIT ?", (start, room)):
            for index, slot in enumerate(_SLOTS):
                if (row[0], index) <= (start, part) or row[5 + index] is None:
                    continue
                out.append(StoredPayload((1, row[0], index), slot, row[5 + index], workflow_id=row[1],
                                         workflow=row[2], run=row[3], status=row[4]))
    if len(out) < limit and table <= 2:
        start, position = (first, second) if table == 2 else (-1, -1)
        for wf, pos, kind, failed, payload, wid, name, run, status in conn.execute(
                "SELECT j.wf, j.position, l.kind, j.failed, j.payload, w.id, w.name, w.run, w.status "
                "FROM journal j JOIN labels l ON l.label = j.label JOIN workflows w ON w.key = j.wf "
                "WHERE (j.wf, j.position) > (?, ?) ORDER BY j.wf, j.position LIMIT ?",
                (start, position, limit - len(out))):
            out.append(StoredPayload((2, wf, pos), "entry", payload, workflow_id=wid, workflow=name, run=run,
                                     status=status, position=pos, kind=kind, failed=bool(failed)))
    if len(out) < limit:
        start = first if table == 3 else -1
        for seq, name, payload, wid, workflow, run in conn.execute(
                "SELECT i.seq, i.name, i.payload, w.id, w.name, w.run FROM inbox i JOIN workflows w "
                "ON w.key = i.wf WHERE i.seq > ? ORDER BY i.seq LIMIT ?", (start, limit - len(out))):
            out.append(StoredPayload((3, seq, 0), "signal", payload, workflow_id=wid, workflow=workflow,
                                     run=run, kind=name))
    return out[:limit]


def replace_payloads(conn: sqlite3.Connection, changes: Sequence[tuple[StoredPayload, bytes]]) -> int:
    """Compare-and-swap: a payload rewritten since it was read keeps its new bytes."""
    replaced = 0
    for old, new in changes:
        table, first, second = old.where
        if table == 0:
            cursor = conn.execute("UPDATE meta SET value = ? WHERE key = ? AND value = ?", (new, first, old.data))
        elif table == 1:
            column = _SLOTS[second]
            cursor = conn.execute(f"UPDATE workflows SET {column} = ? WHERE key = ? AND {column} = ?",
                                  (new, first, old.data))
        elif table == 2:
            cursor = conn.execute("UPDATE journal SET payload = ? WHERE wf = ? AND position = ? AND payload = ?",
                                  (new, first, second, old.data))
        else:
            cursor = conn.execute("UPDATE inbox SET payload = ? WHERE seq = ? AND payload = ?", (new, first, old.data))
        replaced += cursor.rowcount
    return replaced


def signal(conn: sqlite3.Connection, workflow_id: str, name: str, payload: bytes, now: float) -> int:
    row = conn.execute("SELECT key, status FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
    if row is None:
        raise WorkflowNotFoundError(workflow_id)
    key, status = row
    if status in FINISHED:
        raise WorkflowClosedError(workflow_id, status)
    seq = conn.execute("INSERT INTO inbox (wf, name, payload, sent_at) VALUES (?, ?, ?, ?)",
                       (key, name, payload, now)).lastrowid
    conn.execute(_POKE_BY_KEY, (now, key))
    return int(seq)  # type: ignore[arg-type]


def cancel(conn: sqlite3.Connection, workflow_id: str, now: float) -> bool:
    row = conn.execute("SELECT status FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
    if row is None:
        raise WorkflowNotFoundError(workflow_id)
    if row[0] in FINISHED:
        return False
    conn.execute(_CANCEL_BY_ID, (now, workflow_id))
    return True


def inbox(conn: sqlite3.Connection, workflow_id: str) -> tuple[list[Signal], int, bool]:
    # One read transaction, so the poke count and the signals agree.
    conn.execute("BEGIN")
    try:
        row = conn.execute("SELECT key, poke, cancel_requested FROM workflows WHERE id = ?",
                           (workflow_id,)).fetchone()
        if row is None:
            raise WorkflowNotFoundError(workflow_id)
        signals = [Signal(seq, name, payload) for seq, name, payload in conn.execute(
            "SELECT seq, name, payload FROM inbox WHERE wf = ? ORDER BY seq", (row[0],))]
    finally:
        if conn.in_transaction:  # SQLite may have ended it on an error: keep that error
            conn.execute("COMMIT")
    return signals, row[1], bool(row[2])


_CHUNK_SQL = (
    "SELECT j.position, l.kind, l.name, coalesce(j.digest, X''), j.failed, j.payload "
    "FROM journal j JOIN labels l ON l.label = j.label WHERE j.wf = ? AND j.position > ? "
    "ORDER BY j.position LIMIT ?"
)


def journal_chunk(conn: sqlite3.Connection, key: int, after: int, limit: int) -> list[StoredEntry]:
    # Rows come out in StoredEntry's field order (failed as 0/1): the only
    # Python work per row is the cheapest way to make it a StoredEntry.
    return [_new_entry(StoredEntry, row) for row in conn.execute(_CHUNK_SQL, (key, after, limit))]
