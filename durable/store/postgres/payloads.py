"""Paging through every stored payload and swapping it in place, for key rotation (`durable reencode`).

A payload's `where` is (table, first, second): (0, meta key, 0), (1, workflow
key, column index), (2, workflow key, position), (3, inbox seq, 0); pages go
in that order. A swap is a compare-and-swap: a payload rewritten since it was
read keeps its new bytes. Each table is swapped by its own statement, so no
statement holds rows of two tables (nothing to deadlock with a commit).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..types import StoredPayload

__all__ = ["page", "replace"]

_SLOTS = ("args", "result", "pending")

_META = 'SELECT key, value FROM meta WHERE key COLLATE "C" > $1 ORDER BY key COLLATE "C" LIMIT $2'
_COLUMNS = ("SELECT key, id, name, run, status, args, result, pending FROM workflows WHERE key >= $1 "
            "ORDER BY key LIMIT $2")
_ENTRIES = (
    "SELECT j.wf, j.position, l.kind, j.failed, j.payload, w.id, w.name, w.run, w.status "
    "FROM journal j JOIN labels l ON l.label = j.label JOIN workflows w ON w.key = j.wf "
    "WHERE (j.wf, j.position) > ($1, $2) ORDER BY j.wf, j.position LIMIT $3"
)
_SIGNALS = (
    "SELECT i.seq, i.name, i.payload, w.id, w.name, w.run FROM inbox i JOIN workflows w ON w.key = i.wf "
    "WHERE i.seq > $1 ORDER BY i.seq LIMIT $2"
)

_SWAP_META = ("UPDATE meta m SET value = c.new FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS c(key, old, new) "
              "WHERE m.key = c.key AND m.value = c.old")
# Workflow rows are locked in key order, like every statement that locks several (functions.py).
_SWAP_COLUMN = (
    "UPDATE workflows w SET {column} = c.new FROM (SELECT x.key, x.old, x.new FROM "
    "unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS x(key, old, new) JOIN workflows f ON f.key = x.key "
    "ORDER BY x.key FOR UPDATE OF f) c WHERE w.key = c.key AND w.{column} = c.old"
)
_SWAP_ENTRIES = (
    "UPDATE journal j SET payload = c.new "
    "FROM unnest($1::bigint[], $2::integer[], $3::bytea[], $4::bytea[]) AS c(wf, pos, old, new) "
    "WHERE j.wf = c.wf AND j.position = c.pos AND j.payload = c.old"
)
_SWAP_SIGNALS = ("UPDATE inbox i SET payload = c.new FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) "
                 "AS c(seq, old, new) WHERE i.seq = c.seq AND i.payload = c.old")


async def page(pool: Any, after: tuple[Any, ...] | None, limit: int) -> list[StoredPayload]:
    """Up to `limit` payloads after `after`, in `where` order."""
    table, first, second = after if after is not None else (-1, None, -1)
    out: list[StoredPayload] = []
    if table <= 0:
        for key, value in await pool.fetch(_META, first if table == 0 else "", limit):
            out.append(StoredPayload((0, key, 0), "meta", value, kind=key))
    if len(out) < limit and table <= 1:
        start, part = (first, second) if table == 1 else (0, -1)
        # Every row past the cursor has args (NOT NULL), so `room` of them fill the page; the row the
        # cursor is in may have nothing left after its column, so it is asked for as one more.
        room = limit - len(out) + 1
        for row in await pool.fetch(_COLUMNS, start, room):
            for index, slot in enumerate(_SLOTS):
                if (row[0], index) <= (start, part) or row[5 + index] is None:
                    continue
                out.append(StoredPayload((1, row[0], index), slot, row[5 + index], workflow_id=row[1].decode(),
                                         workflow=row[2].decode(), run=row[3], status=row[4]))
    if len(out) < limit and table <= 2:
        start, position = (first, second) if table == 2 else (0, -1)
        for wf, pos, kind, failed, payload, wid, name, run, status in await pool.fetch(
                _ENTRIES, start, position, limit - len(out)):
            out.append(StoredPayload((2, wf, pos), "entry", payload, workflow_id=wid.decode(), workflow=name.decode(),
                                     run=run, status=status, position=pos, kind=kind, failed=failed))
    if len(out) < limit:
        start = first if table == 3 else 0
        for seq, name, payload, wid, workflow, run in await pool.fetch(_SIGNALS, start, limit - len(out)):
            out.append(StoredPayload((3, seq, 0), "signal", payload, workflow_id=wid.decode(),
                                     workflow=workflow.decode(), run=run, kind=name.decode()))
    return out[:limit]


async def replace(pool: Any, changes: Sequence[tuple[StoredPayload, bytes]],
                  retrying: Callable[[Callable[[], Awaitable[str]]], Awaitable[str]]) -> int:
    """Swap each payload that still holds the bytes it was read with; the count swapped.

    `retrying` runs one statement again if it was rolled back (a deadlock): statement by
    statement, so the count stays exact."""
    by_table: dict[Any, list[tuple[Any, ...]]] = {}
    for old, new in changes:
        table, first, second = old.where
        group = (1, second) if table == 1 else table
        by_table.setdefault(group, []).append((first, second, old.data, new))
    replaced = 0
    for group, rows in by_table.items():
        firsts, seconds, olds, news = (list(col) for col in zip(*rows))
        if group == 0:
            query, args = _SWAP_META, (firsts, olds, news)
        elif group == 2:
            query, args = _SWAP_ENTRIES, (firsts, seconds, olds, news)
        elif group == 3:
            query, args = _SWAP_SIGNALS, (firsts, olds, news)
        else:
            query, args = _SWAP_COLUMN.format(column=_SLOTS[group[1]]), (firsts, olds, news)
        status = await retrying(lambda query=query, args=args: pool.execute(query, *args))
        replaced += int(status.rsplit(" ", 1)[1])  # "UPDATE <rows>"
    return replaced
