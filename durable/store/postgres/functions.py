"""Server-side functions: a group commit and a claim, each one round trip.

Why functions: a commit must apply each write whole or not at all, in the
order given, fenced by a lease token read under a row lock. As separate
statements that is BEGIN, several statements and COMMIT, and on this
machine every extra round trip costs as much as the work (PERFORMANCE.md:
explicit BEGIN/COMMIT halves throughput). One call of a PL/pgSQL function
is one statement in an implicit transaction: one round trip, one WAL flush.

The functions only do the store's bookkeeping (fencing, positions, pokes);
what to write and when stays in the engine.

Locking rule, so concurrent commits and claims never deadlock: whoever
locks several workflow rows locks them in `key` order, or skips locked ones
(SKIP LOCKED). A commit locks every row it may touch (its own workflows,
those it wakes or cancels) in its first statement.
"""

from __future__ import annotations

__all__ = ["FUNCTIONS_V1"]

_SWEEP = r"""
-- Release leases of dead workers and leases that ran out; forget dead workers once nothing of theirs is
-- left. Never call this on a connection that holds worker locks: to it, its own locks would look free.
CREATE FUNCTION sweep(ns integer, now_ double precision, wall double precision) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    dead_keys integer[];
    released integer;
BEGIN
    -- Nobody holds the advisory lock of a dead worker: the server dropped it with its connection.
    UPDATE workers SET dead = true WHERE NOT dead AND pg_try_advisory_xact_lock(ns, key);
    dead_keys := ARRAY(SELECT key FROM workers WHERE dead);
    UPDATE workflows w SET lease_owner = NULL, lease_expires = NULL, ready_at = now_
    FROM (SELECT f.key FROM workflows f
          WHERE f.lease_owner IS NOT NULL AND (f.lease_owner = ANY(dead_keys) OR f.lease_expires < wall)
          FOR UPDATE SKIP LOCKED) g
    WHERE w.key = g.key;
    GET DIAGNOSTICS released = ROW_COUNT;
    -- A row skipped above (locked by a commit that will be fenced) is released by a later sweep.
    DELETE FROM workers k WHERE k.dead AND NOT EXISTS (SELECT 1 FROM workflows f WHERE f.lease_owner = k.key);
    IF released > 0 THEN
        PERFORM pg_notify('durable', current_schema());
    END IF;
    RETURN released;
END $$;
"""

_CLAIM = r"""
CREATE FUNCTION claim_work(me integer, names bytea[], lim integer, suspects integer, lease_s double precision,
                           now_ double precision, do_sweep boolean, ns integer)
RETURNS TABLE (id bytea, name bytea, run integer, token bigint, status text, args bytea, pending bytea,
               poke bigint, cancel_requested boolean, attempts integer, parent_id bytea, held boolean,
               ready_at double precision)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    wall double precision := extract(epoch FROM clock_timestamp());
    taken integer := 0;
BEGIN
    -- Workflows this worker holds that were poked since it last looked. First, before this
    -- transaction holds any other row, and in key order like commits: waiting here cannot deadlock.
    RETURN QUERY
    UPDATE workflows w SET notified_poke = w.poke
    FROM (SELECT f.key FROM workflows f
          WHERE f.lease_owner = me AND f.lease_expires >= wall AND f.poke > f.seen_poke
            AND f.poke > f.notified_poke
          ORDER BY f.key FOR UPDATE) h
    WHERE w.key = h.key
    RETURNING w.id, w.name, w.run, w.lease_token, w.status, w.args, w.pending, w.poke, w.cancel_requested,
              w.attempts, w.parent_id, true, w.ready_at;
    IF do_sweep THEN
        PERFORM sweep(ns, now_, wall);
    END IF;
    IF lim <= 0 OR cardinality(names) = 0 THEN
        RETURN;
    END IF;
    -- Ready workflows that did not crash twice in a row without progress (attempts <= 1), as many as fit ...
    RETURN QUERY
    UPDATE workflows w SET lease_owner = me, lease_token = w.lease_token + 1, lease_expires = wall + lease_s,
                           attempts = w.attempts + 1, notified_poke = w.poke
    FROM (SELECT f.key FROM workflows f
          WHERE f.ready_at <= now_ AND f.lease_owner IS NULL AND f.attempts <= 1 AND f.name = ANY(names)
          ORDER BY f.ready_at LIMIT lim FOR UPDATE SKIP LOCKED) c
    WHERE w.key = c.key
    RETURNING w.id, w.name, w.run, w.lease_token, w.status, w.args, w.pending, w.poke, w.cancel_requested,
              w.attempts, w.parent_id, false, w.ready_at;
    GET DIAGNOSTICS taken = ROW_COUNT;
    IF suspects <= 0 OR taken >= lim THEN
        RETURN;
    END IF;
    -- ... then at most `suspects` whose last two claims ended without a write: maybe they kill workers.
    RETURN QUERY
    UPDATE workflows w SET lease_owner = me, lease_token = w.lease_token + 1, lease_expires = wall + lease_s,
                           attempts = w.attempts + 1, notified_poke = w.poke
    FROM (SELECT f.key FROM workflows f
          WHERE f.ready_at <= now_ AND f.lease_owner IS NULL AND f.attempts > 1 AND f.name = ANY(names)
          ORDER BY f.ready_at LIMIT least(suspects, lim - taken) FOR UPDATE SKIP LOCKED) c
    WHERE w.key = c.key
    RETURNING w.id, w.name, w.run, w.lease_token, w.status, w.args, w.pending, w.poke, w.cancel_requested,
              w.attempts, w.parent_id, false, w.ready_at;
END $$;
"""

# Writes arrive as parallel arrays (w_*: one element per write; e_*: per journal entry, c_*: per
# consumed signal, n_*: per child created, k_*: per wake, x_*: per cancel; *_w is the 1-based index of
# the write they belong to). `w_round` numbers the writes of one workflow in order: round r applies
# the r-th write of every workflow, so each statement below touches a workflow at most once.
# Returns one code per write: 0 fenced, 1 ok, 2 conflict.
_COMMIT = r"""
CREATE FUNCTION commit_writes(
    w_id bytea[], w_token bigint[], w_round integer[], w_count integer[], w_touch boolean[],
    w_status text[], w_ready double precision[], w_pending bytea[], w_result bytea[], w_seen bigint[],
    w_release boolean[], w_reason text[], w_clear boolean[], w_new_run bytea[],
    e_w integer[], e_pos integer[], e_label integer[], e_digest bytea[], e_failed boolean[], e_payload bytea[],
    c_w integer[], c_seq bigint[],
    n_w integer[], n_id bytea[], n_name bytea[], n_args bytea[], n_at double precision[], n_parent bytea[],
    k_w integer[], k_id bytea[], x_w integer[], x_id bytea[],
    now_ double precision, rounds integer, any_touch boolean, any_new_run boolean)
RETURNS smallint[]
LANGUAGE plpgsql AS $$
DECLARE
    outcome smallint[] := array_fill(0::smallint, ARRAY[cardinality(w_id)]);
    keys bigint[];  -- per write: its workflow's key if it applies in this round, 0 if not, -key on conflict
    got_wf bigint[];
    got_pos integer[];
    bad bigint[];
    woke boolean := false;
    freed boolean;
    changed integer;
BEGIN
    -- Lock every row this commit may change, in key order (see the locking rule).
    PERFORM 1 FROM workflows WHERE id = ANY(w_id || k_id || x_id) ORDER BY key FOR UPDATE;
    FOR r IN 1..rounds LOOP
        -- Fencing: a write applies only while its token is the workflow's current lease.
        keys := ARRAY(
            SELECT CASE WHEN w.rnd = r THEN coalesce(
                       (SELECT f.key FROM workflows f
                        WHERE f.id = w.id AND f.lease_token = w.token AND f.lease_owner IS NOT NULL), 0)
                   ELSE 0 END
            FROM unnest(w_id, w_token, w_round) WITH ORDINALITY AS w(id, token, rnd, i) ORDER BY w.i);
        IF cardinality(e_w) > 0 THEN
            WITH ins AS (
                INSERT INTO journal (wf, position, label, digest, failed, payload)
                SELECT keys[e.w], e.pos, e.label, e.digest, e.failed, e.payload
                FROM unnest(e_w, e_pos, e_label, e_digest, e_failed, e_payload)
                     AS e(w, pos, label, digest, failed, payload)
                WHERE keys[e.w] > 0
                ON CONFLICT DO NOTHING
                RETURNING wf, position)
            SELECT array_agg(wf), array_agg(position) INTO got_wf, got_pos FROM ins;
            IF coalesce(cardinality(got_wf), 0) <>
               (SELECT coalesce(sum(x.c), 0) FROM unnest(keys, w_count) AS x(k, c) WHERE x.k > 0) THEN
                -- A position was taken: every write that lost one is a conflict and takes back its rows.
                bad := ARRAY(SELECT x.k FROM unnest(keys, w_count) AS x(k, c)
                             WHERE x.k > 0 AND x.c <> (SELECT count(*) FROM unnest(got_wf) AS g(wf)
                                                       WHERE g.wf = x.k));
                DELETE FROM journal j USING unnest(got_wf, got_pos) AS g(wf, pos)
                WHERE g.wf = ANY(bad) AND j.wf = g.wf AND j.position = g.pos;
                keys := ARRAY(SELECT CASE WHEN x.k = ANY(bad) THEN -x.k ELSE x.k END
                              FROM unnest(keys) WITH ORDINALITY AS x(k, i) ORDER BY x.i);
            END IF;
        END IF;
        outcome := ARRAY(SELECT CASE WHEN x.k > 0 THEN 1::smallint WHEN x.k < 0 THEN 2::smallint ELSE x.o END
                         FROM unnest(keys, outcome) WITH ORDINALITY AS x(k, o, i) ORDER BY x.i);
        IF any_touch THEN
            -- A poke after what the engine saw keeps the workflow ready (no lost wake-up); a cancel
            -- request is cleared only if no newer poke (maybe another cancel) came since.
            WITH u AS (
                UPDATE workflows f SET
                    status = w.status,
                    ready_at = CASE WHEN w.status = 'blocked' THEN NULL
                                    WHEN f.poke > w.seen AND w.status IN ('running', 'waiting') THEN now_
                                    ELSE w.ready END,
                    pending = w.pending,
                    result = w.result,
                    blocked_reason = w.reason,
                    seen_poke = greatest(f.seen_poke, w.seen),
                    cancel_requested = CASE WHEN w.clear AND f.poke <= w.seen THEN false
                                            ELSE f.cancel_requested END,
                    attempts = 0,
                    updated_at = now_,
                    lease_owner = CASE WHEN w.release THEN NULL ELSE f.lease_owner END,
                    lease_expires = CASE WHEN w.release THEN NULL ELSE f.lease_expires END
                FROM unnest(keys, w_touch, w_status, w_ready, w_pending, w_result, w_seen, w_release, w_reason,
                            w_clear) AS w(k, touch, status, ready, pending, result, seen, release, reason, clear)
                WHERE w.k > 0 AND w.touch AND f.key = w.k
                -- Tell others when a lease frees work, and when a workflow finished: a result()
                -- waiting in another process hears it at once instead of at its next poll.
                RETURNING (w.release AND f.ready_at <= now_)
                          OR w.status IN ('completed', 'failed', 'cancelled') AS ready_now)
            SELECT coalesce(bool_or(ready_now), false) INTO freed FROM u;
            woke := woke OR freed;
        END IF;
        IF cardinality(c_w) > 0 THEN
            DELETE FROM inbox b USING unnest(c_w, c_seq) AS c(w, seq)
            WHERE keys[c.w] > 0 AND b.seq = c.seq AND b.wf = keys[c.w];
        END IF;
        IF any_new_run THEN
            -- continue_as_new: the next run starts with an empty journal; the inbox carries over.
            DELETE FROM journal j USING unnest(keys, w_new_run) AS x(k, args)
            WHERE x.k > 0 AND x.args IS NOT NULL AND j.wf = x.k;
            UPDATE workflows f SET run = f.run + 1, args = x.args, pending = NULL, result = NULL
            FROM unnest(keys, w_new_run) AS x(k, args)
            WHERE x.k > 0 AND x.args IS NOT NULL AND f.key = x.k;
        END IF;
        IF cardinality(n_w) > 0 THEN
            INSERT INTO workflows (id, name, status, args, parent_id, created_at, updated_at, ready_at)
            SELECT n.id, n.name, 'running', n.args, n.parent, n.at, n.at, n.at
            FROM unnest(n_w, n_id, n_name, n_args, n_at, n_parent) AS n(w, id, name, args, at, parent)
            WHERE keys[n.w] > 0
            ON CONFLICT (id) DO NOTHING;
            GET DIAGNOSTICS changed = ROW_COUNT;
            woke := woke OR changed > 0;
        END IF;
        IF cardinality(k_w) > 0 THEN
            UPDATE workflows f SET poke = f.poke + t.n,
                ready_at = CASE WHEN f.status IN ('running', 'waiting') THEN now_ ELSE f.ready_at END
            FROM (SELECT k.id, count(*) AS n FROM unnest(k_w, k_id) AS k(w, id)
                  WHERE keys[k.w] > 0 GROUP BY k.id) t
            WHERE f.id = t.id;
            GET DIAGNOSTICS changed = ROW_COUNT;
            woke := woke OR changed > 0;
        END IF;
        IF cardinality(x_w) > 0 THEN
            UPDATE workflows f SET cancel_requested = true, poke = f.poke + t.n,
                ready_at = CASE WHEN f.status IN ('running', 'waiting') THEN now_ ELSE f.ready_at END
            FROM (SELECT x.id, count(*) AS n FROM unnest(x_w, x_id) AS x(w, id)
                  WHERE keys[x.w] > 0 GROUP BY x.id) t
            WHERE f.id = t.id AND f.status NOT IN ('completed', 'failed', 'cancelled');
            GET DIAGNOSTICS changed = ROW_COUNT;
            woke := woke OR changed > 0;
        END IF;
    END LOOP;
    IF woke THEN
        PERFORM pg_notify('durable', current_schema());
    END IF;
    RETURN outcome;
END $$;
"""

FUNCTIONS_V1 = _SWEEP + _CLAIM + _COMMIT
