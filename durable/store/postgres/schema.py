"""The PostgreSQL schema, its version and how to migrate to it.

Everything lives in one PostgreSQL schema (`durable` unless told otherwise),
so durable's tables never collide with an application's. Readable with
plain SQL: `SELECT * FROM durable.workflows_view WHERE status = 'waiting'`
lists waiting workflows, `SELECT * FROM durable.journal_view WHERE
workflow_id = 'order-17'` shows a journal. Payloads are bytea as the engine
wrote them (serialized, compressed and encrypted as configured).

Ids and names are stored as UTF-8 in bytea, not text: PostgreSQL text cannot
hold NUL, and durable stores any string exactly. Byte order of UTF-8 is code
point order, so `ORDER BY id` pages like Python's string order. The views
show them as text (`durable.label_text`: NUL and invalid bytes escaped).

Tables
- workflows: one row per workflow id; `key` is the compact integer journal
  and inbox rows use instead of repeating the id. `ready_at` is when an
  unleased workflow next needs a worker (NULL: only when poked).
  `lease_owner` (a workers.key) / `lease_token` / `lease_expires` are the
  claim and its fencing token, `lease_expires` on the server's clock; `poke`
  counts signals and cancels, `seen_poke` what the engine has handled.
- labels: each distinct (kind, name) once; journal rows point to it.
- journal: one row per recorded effect, keyed by (workflow key, position).
- inbox: signals not yet consumed, oldest first per workflow.
- workers: live engines. Each holds the session advisory lock (namespace,
  key) on its own connection while it lives (see liveness.py).
- meta: small settings, e.g. the (encrypted) digest key.
- schema_version: one row, the version below.

The functions `commit_writes`, `claim_work` and `sweep` (functions.py) apply
a group commit, a claim and the release of dead or expired leases, each in
one round trip.
"""

from __future__ import annotations

import re
import zlib

from .functions import FUNCTIONS_V1

__all__ = ["SCHEMA_VERSION", "check_schema_name", "lock_namespace", "migrate"]

SCHEMA_VERSION = 1

_V1 = r"""
CREATE TABLE schema_version (version integer NOT NULL);
INSERT INTO schema_version VALUES (0);

CREATE TABLE workflows (
    key              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               bytea NOT NULL UNIQUE,
    name             bytea NOT NULL,
    status           text NOT NULL,
    run              integer NOT NULL DEFAULT 0,
    args             bytea NOT NULL,
    result           bytea,
    parent_id        bytea,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    ready_at         double precision,
    blocked_reason   text,
    cancel_requested boolean NOT NULL DEFAULT false,
    pending          bytea,
    poke             bigint NOT NULL DEFAULT 0,
    seen_poke        bigint NOT NULL DEFAULT 0,
    notified_poke    bigint NOT NULL DEFAULT 0,
    lease_owner      integer,
    lease_token      bigint NOT NULL DEFAULT 0,
    lease_expires    double precision,
    attempts         integer NOT NULL DEFAULT 0
);
CREATE INDEX workflows_ready ON workflows (ready_at) WHERE lease_owner IS NULL AND ready_at IS NOT NULL;
CREATE INDEX workflows_owner ON workflows (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX workflows_expiry ON workflows (lease_expires) WHERE lease_owner IS NOT NULL;
CREATE INDEX workflows_status ON workflows (status, id);
CREATE INDEX workflows_parent ON workflows (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE labels (
    label integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind  text NOT NULL,
    name  bytea NOT NULL,
    UNIQUE (kind, name)
);

CREATE TABLE journal (
    wf       bigint NOT NULL,
    position integer NOT NULL,
    label    integer NOT NULL,
    digest   bytea,
    failed   boolean NOT NULL,
    payload  bytea NOT NULL,
    PRIMARY KEY (wf, position)
);

CREATE TABLE inbox (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wf      bigint NOT NULL,
    name    bytea NOT NULL,
    payload bytea NOT NULL,
    sent_at double precision NOT NULL
);
CREATE INDEX inbox_wf ON inbox (wf, seq);

CREATE SEQUENCE worker_keys AS integer;
CREATE TABLE workers (
    key        integer PRIMARY KEY,
    worker     bytea NOT NULL UNIQUE,
    names      bytea[] NOT NULL,
    pid        integer NOT NULL,
    host       text NOT NULL,
    started_at double precision NOT NULL,
    dead       boolean NOT NULL DEFAULT false
);

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

-- For people: ids and names as text, NUL (which text cannot hold) escaped.
CREATE FUNCTION label_text(value bytea) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN position('\x00'::bytea IN value) = 0 THEN convert_from(value, 'UTF8')
                ELSE encode(value, 'escape') END
$$;

CREATE VIEW workflows_view AS
    SELECT label_text(w.id) AS id, label_text(w.name) AS name, w.status, w.run, w.blocked_reason,
           to_timestamp(w.created_at) AS created_at, to_timestamp(w.updated_at) AS updated_at,
           to_timestamp(w.ready_at) AS ready_at, label_text(w.parent_id) AS parent_id, w.cancel_requested,
           label_text(k.worker) AS lease_owner, to_timestamp(w.lease_expires) AS lease_expires, w.attempts,
           w.key
    FROM workflows w LEFT JOIN workers k ON k.key = w.lease_owner;

CREATE VIEW journal_view AS
    SELECT label_text(w.id) AS workflow_id, w.run, j.position, l.kind, label_text(l.name) AS name,
           j.failed, length(j.payload) AS payload_bytes, j.digest, j.payload
    FROM journal j JOIN workflows w ON w.key = j.wf JOIN labels l ON l.label = j.label;
"""

# version -> the SQL that brings a schema at that version to version + 1
_MIGRATIONS: dict[int, str] = {0: _V1 + FUNCTIONS_V1}

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")


def check_schema_name(schema: str) -> str:
    if not isinstance(schema, str) or not _NAME.fullmatch(schema):
        raise ValueError(
            f"PostgresStore(schema={schema!r}): use lowercase letters, digits and _ (at most 48, not starting "
            "with a digit)")
    return schema


def lock_namespace(schema: str) -> int:
    """The first key of every advisory lock this schema's stores take (a signed 32-bit int)."""
    value = zlib.crc32(f"durable:{schema}".encode())
    return value - (1 << 32) if value >= 1 << 31 else value


async def migrate(conn, schema: str) -> None:  # type: ignore[no-untyped-def]
    """Create or upgrade `schema` to SCHEMA_VERSION, in one transaction.

    An advisory lock serializes stores that open at the same moment: the
    second waits, then finds the schema current.
    """
    where = f"PostgreSQL schema {schema!r}"
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", lock_namespace(schema))
        tables = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'p')", schema)
        names = {row[0] for row in tables}
        if names and "schema_version" not in names:
            raise RuntimeError(
                f"{where} holds tables durable did not create ({', '.join(sorted(names)[:5])}); "
                "pass PostgresStore(dsn, schema='...') to use another schema")
        version = 0
        if names:
            version = await conn.fetchval(f'SELECT version FROM "{schema}".schema_version')
            if version is None:
                raise RuntimeError(
                    f"{where} has an empty schema_version table (edited by hand, or a damaged "
                    "schema); restore its one row, or use another schema")
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{where} has durable schema version {version}, newer than this version of durable "
                f"understands ({SCHEMA_VERSION}); upgrade durable to open it")
        if version == SCHEMA_VERSION:
            return
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path = "{schema}"')
        while version < SCHEMA_VERSION:
            await conn.execute(_MIGRATIONS[version])
            version += 1
            await conn.execute("UPDATE schema_version SET version = $1", version)
