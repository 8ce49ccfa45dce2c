"""The SQLite schema, its version and how to migrate to it.

Readable with plain SQL: `SELECT id, status FROM workflows WHERE status =
'waiting'` lists waiting workflows, and `SELECT * FROM journal_view WHERE
workflow_id = 'order-17'` shows a journal. Payloads are BLOBs as the engine
wrote them (serialized, compressed and encrypted as configured).

Tables
- workflows: one row per workflow id. `key` is a compact integer handle
  that journal and inbox rows use instead of repeating the id. `ready_at`
  is when an unleased workflow next needs a worker (NULL: only when poked).
  `lease_owner`/`lease_token`/`lease_expires` are the claim and its fencing
  token; `poke` counts signals and cancels, `seen_poke` what the engine has
  handled. `pending` is the engine's encoded timers and retry state.
- labels: each distinct (kind, name) once; journal rows point to it, which
  keeps an entry to a few dozen bytes.
- journal: one row per recorded effect, keyed by (workflow key, position),
  so a position can never be recorded twice.
- inbox: signals not yet consumed, oldest first per workflow.
- workers: live engines; each holds an exclusive lock on its file in the
  `<db>-workers` directory while its process lives.
- meta: small settings, e.g. the (encrypted) digest key.
"""

from __future__ import annotations

import sqlite3

__all__ = ["SCHEMA_VERSION", "migrate"]

SCHEMA_VERSION = 1

_V1 = """
CREATE TABLE workflows (
    key              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    run              INTEGER NOT NULL DEFAULT 0,
    args             BLOB NOT NULL,
    result           BLOB,
    parent_id        TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    ready_at         REAL,
    blocked_reason   TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    pending          BLOB,
    poke             INTEGER NOT NULL DEFAULT 0,
    seen_poke        INTEGER NOT NULL DEFAULT 0,
    notified_poke    INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_token      INTEGER NOT NULL DEFAULT 0,
    lease_expires    REAL,
    attempts         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workflows_ready ON workflows (ready_at) WHERE lease_owner IS NULL AND ready_at IS NOT NULL;
CREATE INDEX workflows_lease ON workflows (lease_owner, lease_expires) WHERE lease_owner IS NOT NULL;
CREATE INDEX workflows_status ON workflows (status, name);
CREATE INDEX workflows_parent ON workflows (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE labels (
    label INTEGER PRIMARY KEY,
    kind  TEXT NOT NULL,
    name  TEXT NOT NULL,
    UNIQUE (kind, name)
);

CREATE TABLE journal (
    wf       INTEGER NOT NULL,
    position INTEGER NOT NULL,
    label    INTEGER NOT NULL,
    digest   BLOB,
    failed   INTEGER NOT NULL,
    payload  BLOB NOT NULL,
    PRIMARY KEY (wf, position)
) WITHOUT ROWID;

CREATE TABLE inbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    wf      INTEGER NOT NULL,
    name    TEXT NOT NULL,
    payload BLOB NOT NULL,
    sent_at REAL NOT NULL
);
CREATE INDEX inbox_wf ON inbox (wf, seq);

CREATE TABLE workers (
    worker     TEXT PRIMARY KEY,
    lock       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    host       TEXT NOT NULL,
    names      TEXT NOT NULL,
    started_at REAL NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE VIEW journal_view AS
    SELECT w.id AS workflow_id, w.run, j.position, l.kind, l.name,
           j.failed, length(j.payload) AS payload_bytes, j.digest, j.payload
    FROM journal j JOIN workflows w ON w.key = j.wf JOIN labels l ON l.label = j.label;
"""

# version -> the statements that bring a database at that version to version+1
_MIGRATIONS: dict[int, str] = {0: _V1}


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Create or upgrade the schema to SCHEMA_VERSION, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{path} has durable schema version {version}, newer than this version of durable "
                f"understands ({SCHEMA_VERSION}); upgrade durable to open it"
            )
        if version == 0 and conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchone()[0]:
            raise RuntimeError(f"{path} is an SQLite database that durable did not create; use another file")
        while version < SCHEMA_VERSION:
            for statement in _MIGRATIONS[version].split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            version += 1
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
