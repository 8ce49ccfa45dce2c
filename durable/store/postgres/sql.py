"""The statements of the PostgreSQL store (rows become records in convert.py).

Ids and names travel as UTF-8 bytes (bytea); see schema.py for why.
Statements that change several workflow rows lock them in key order
(functions.py states the rule). Every statement runs with `search_path`
set to the store's schema.
"""

from __future__ import annotations


_FINISHED = "('completed', 'failed', 'cancelled')"
_NOTIFY = "pg_notify('durable', current_schema())"

RECORD = (
    "w.id, w.name, w.status, w.run, w.args, w.result, w.parent_id, w.created_at, w.updated_at, w.ready_at, "
    "w.blocked_reason, w.cancel_requested, k.worker, w.lease_expires, w.attempts, w.lease_token, w.pending "
    "FROM workflows w LEFT JOIN workers k ON k.key = w.lease_owner"
)
GET_MANY = f"SELECT {RECORD} WHERE w.id = ANY($1)"

# Many creates in one statement (batch.py); ids are distinct within one.
CREATE_MANY = (
    "INSERT INTO workflows (id, name, status, args, parent_id, created_at, updated_at, ready_at, lease_owner, "
    "lease_token, lease_expires, attempts) "
    "SELECT n.id, n.name, 'running', n.args, n.parent, n.at, n.at, n.at, n.owner, "
    "CASE WHEN n.owner IS NULL THEN 0 ELSE 1 END, "
    "CASE WHEN n.owner IS NULL THEN NULL ELSE extract(epoch FROM clock_timestamp()) + n.lease END, "
    "CASE WHEN n.owner IS NULL THEN 0 ELSE 1 END "
    "FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::double precision[], $6::integer[], "
    "$7::double precision[]) AS n(id, name, args, parent, at, owner, lease) "
    "ON CONFLICT (id) DO NOTHING "
    f"RETURNING id, key, lease_expires, CASE WHEN lease_owner IS NULL THEN {_NOTIFY} END"
)
NOTIFY = f"SELECT {_NOTIFY}"

CLAIM = "SELECT * FROM claim_work($1, $2, $3, $4, $5, $6, $7, $8)"
COMMIT = "SELECT commit_writes(" + ", ".join(f"${i}" for i in range(1, 37)) + ")"
# The common step of a busy workflow, on its own in a commit: journal entries under a lease, nothing
# else. One plain statement is cheaper than the function (36 arrays to pass). Fenced: no row in f, so
# nothing inserted; a taken position fails the whole statement (journal_pkey): CONFLICT.
APPEND = (
    "WITH f AS (SELECT key FROM workflows WHERE id = $1 AND lease_token = $2 AND lease_owner IS NOT NULL "
    "FOR UPDATE) "
    "INSERT INTO journal (wf, position, label, digest, failed, payload) "
    "SELECT f.key, e.pos, e.label, e.digest, e.failed, e.payload FROM f, "
    "unnest($3::integer[], $4::integer[], $5::bytea[], $6::boolean[], $7::bytea[]) "
    "AS e(pos, label, digest, failed, payload)"
)

NEXT_READY = (
    "SELECT ready_at FROM workflows WHERE lease_owner IS NULL AND ready_at IS NOT NULL AND name = ANY($1) "
    "ORDER BY ready_at LIMIT 1"
)
RENEW = (
    "UPDATE workflows w SET lease_expires = extract(epoch FROM clock_timestamp()) + $3 "
    "FROM (SELECT key FROM workflows WHERE lease_owner = $1 AND id = ANY($2) ORDER BY key FOR UPDATE) r "
    "WHERE w.key = r.key"
)
# The first chunk of many journals at once (runs start or recover together); the key even when empty.
FIRST_CHUNKS = (
    "SELECT w.id, w.key, j.position, j.label, j.digest, j.failed, j.payload FROM workflows w "
    "LEFT JOIN LATERAL (SELECT position, label, digest, failed, payload FROM journal WHERE wf = w.key "
    "ORDER BY position LIMIT $2) j ON true WHERE w.id = ANY($1) ORDER BY w.id, j.position"
)
JOURNAL_CHUNK = (
    "SELECT position, label, digest, failed, payload FROM journal WHERE wf = $1 AND position > $2 "
    "ORDER BY position LIMIT $3"
)
LABELS_BY_ID = "SELECT label, kind, name FROM labels WHERE label = ANY($1)"
# New labels: insert what is missing, read back all. A label another transaction is inserting right
# now may be missing from the answer (ON CONFLICT waited for it, the snapshot predates it): ask again.
INTERN = (
    "WITH v AS (SELECT * FROM unnest($1::text[], $2::bytea[]) AS v(kind, name)), "
    "ins AS (INSERT INTO labels (kind, name) SELECT kind, name FROM v ON CONFLICT DO NOTHING "
    "RETURNING label, kind, name) "
    "SELECT label, kind, name FROM ins UNION ALL "
    "SELECT l.label, l.kind, l.name FROM labels l JOIN v ON l.kind = v.kind AND l.name = v.name"
)

_WAKE = "ready_at = CASE WHEN status IN ('running', 'waiting') THEN $2 ELSE ready_at END"
# The row is locked by the UPDATE before the inbox row takes its sequence number, so two signals
# to one workflow get their numbers in the order they commit: oldest first holds.
SIGNAL = (
    f"WITH w AS (UPDATE workflows SET poke = poke + 1, {_WAKE} WHERE id = $1 AND status NOT IN {_FINISHED} "
    "RETURNING key), "
    "s AS (INSERT INTO inbox (wf, name, payload, sent_at) SELECT key, $3, $4, $2 FROM w RETURNING seq) "
    f"SELECT seq, {_NOTIFY} FROM s"
)
CANCEL = (
    f"WITH w AS (UPDATE workflows SET cancel_requested = true, poke = poke + 1, {_WAKE} "
    f"WHERE id = $1 AND status NOT IN {_FINISHED} RETURNING key) "
    f"SELECT key, {_NOTIFY} FROM w"
)
POKE = (
    f"WITH w AS (UPDATE workflows SET poke = poke + 1, {_WAKE} WHERE id = $1 AND status NOT IN {_FINISHED} "
    f"RETURNING key) SELECT key, {_NOTIFY} FROM w"
)
STATUS_OF = "SELECT status FROM workflows WHERE id = $1"
# One statement, one snapshot: the poke count and the signals agree.
INBOX_MANY = (
    "SELECT w.id, w.poke, w.cancel_requested, i.seq, i.name, i.payload "
    "FROM workflows w LEFT JOIN inbox i ON i.wf = w.key WHERE w.id = ANY($1) ORDER BY w.id, i.seq"
)
UNBLOCK = (
    "WITH u AS (UPDATE workflows w SET status = 'running', blocked_reason = NULL, ready_at = $3, attempts = 0 "
    "FROM (SELECT key FROM workflows WHERE status = 'blocked' AND (id = ANY($1) OR name = ANY($2)) "
    "ORDER BY key FOR UPDATE) b WHERE w.key = b.key RETURNING 1) "
    "SELECT count(*) FROM u"
)

META_GET = "SELECT value FROM meta WHERE key = $1"
META_PUT = ("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value "
            "RETURNING value")
META_ADD = "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value"

# -- workers (run on the control connection, which holds the workers' advisory locks) --------
NEXT_WORKER_KEY = "SELECT nextval('worker_keys')::integer"
LOCK = "SELECT pg_advisory_lock($1, $2)"
UNLOCK = "SELECT pg_advisory_unlock($1, $2)"
TRY_LOCK_XACT = "SELECT pg_try_advisory_xact_lock($1, $2)"
WORKER_BY_NAME = "SELECT key, dead FROM workers WHERE worker = $1 FOR UPDATE"
SET_NAMES = "UPDATE workers SET names = $2 WHERE key = $1"
ADD_WORKER = ("INSERT INTO workers (key, worker, names, pid, host, started_at) VALUES ($1, $2, $3, $4, $5, $6)")
DROP_WORKER = "DELETE FROM workers WHERE key = $1"
NOTIFY_WORKERS = "SELECT pg_notify('durable_workers', current_schema())"
# A worker that stops cleanly hands its workflows back as ready (on the engine's clock: the time of
# their last write), and a clean stop is not a crash: attempts go back to 0.
RELEASE_CLEAN = (
    "UPDATE workflows w SET lease_owner = NULL, lease_expires = NULL, attempts = 0, "
    "ready_at = coalesce(w.ready_at, w.updated_at) "
    "FROM (SELECT key FROM workflows WHERE lease_owner = $1 ORDER BY key FOR UPDATE) o WHERE w.key = o.key"
)
# A dead worker's workflows are ready now, like the sweep makes them; attempts stay as they are
# (one of them may be what killed it).
RELEASE_DEAD = (
    "UPDATE workflows w SET lease_owner = NULL, lease_expires = NULL, ready_at = $2 "
    "FROM (SELECT key FROM workflows WHERE lease_owner = $1 ORDER BY key FOR UPDATE) o WHERE w.key = o.key"
)
# The names of workers whose lock someone holds. Autocommit: the xact locks this takes on dead
# workers' keys end with the statement.
LIVE_NAMES = ("SELECT DISTINCT unnest(names) FROM workers "
              "WHERE NOT dead AND NOT pg_try_advisory_xact_lock($1, key)")
