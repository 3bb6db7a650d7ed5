-- hub_scheduler on PostgreSQL, schema version 2: every run keeps its attempt log, and
-- statistics keep fine histograms of attempt durations and queue waits.
--
-- runs.attempts is a JSON array, oldest first, of at most 10 entries (MAX_ATTEMPTS_KEPT in
-- domain/model.py; the contract suite checks the two agree), each versioned on its own:
-- {"v": 1, "n": attempt number, "s": started, "f": finished (ISO 8601), "w": worker,
--  "o": outcome, "e": {v, type, message, traceback}, "d": retry delay in ms}; "w", "e" and
-- "d" only when known. runs.attempts_dropped counts the older entries dropped. Runs stored
-- before this migration get an empty log (they read as runs without attempts).

ALTER TABLE runs
    ADD COLUMN attempts jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN attempts_dropped integer NOT NULL DEFAULT 0,
    -- Since when a waiting run may start (enqueued, due, requeued); its queue wait ends
    -- when it is claimed. NULL for runs stored before: their enqueue time stands in.
    ADD COLUMN ready_at timestamptz;

-- Histograms of 13 buckets per decade (domain/histogram.py): element k + 1 counts bucket k;
-- arrays are only as long as their highest bucket needs. *_ms: the exact sums. The power-of-
-- two `durations` of version 1 are no longer written (nor read: they cannot be split).
ALTER TABLE job_stats
    ADD COLUMN duration_buckets bigint[],
    ADD COLUMN duration_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN wait_buckets bigint[],
    ADD COLUMN wait_ms bigint NOT NULL DEFAULT 0;

-- The bucket of a duration in ms: how many lower edges (EDGES_MS) are at or below it.
CREATE FUNCTION fine_bucket(ms bigint) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT width_bucket(ms, '{1,2,2,2,3,3,3,4,5,5,6,8,9,10,12,15,18,21,25,29,35,42,50,59,71,84,100,120,143,171,204,243,290,346,413,493,588,702,838,1000,1194,1426,1702,2031,2425,2895,3456,4125,4924,5879,7018,8377,10000,11938,14252,17013,20310,24245,28943,34552,41247,49239,58781,70171,83768,100000,119378,142511,170126,203092,242447,289427,345511,412463,492389,587802,701704,837678,1000000,1193777,1425103,1701255,2030918,2424463,2894267,3455108,4124627,4923883,5878017,7017039,8376777,10000000,11937767,14251027,17012543,20309177,24244621,28942662,34551073,41246264,49238827,58780161,70170383,83767765,100000000,119377665,142510268,170125428,203091763,242446202,289426613,345510730,412462639,492388264,587801608,701703829,837677641,1000000000,1193776642,1425102671,1701254280,2030917621,2424462018,2894266125,3455107295,4124626383,4923882632,5878016073,7017038287,8376776401,10000000000}'::bigint[])
$$;

-- Bucket numbers -> counts per bucket, as long as the highest one needs.
CREATE FUNCTION fine_counts(buckets integer[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg((SELECT count(*) FROM unnest(buckets) AS b WHERE b = i) ORDER BY i)
    FROM generate_series(0, (SELECT max(b) FROM unnest(buckets) AS b)) AS i
$$;

CREATE FUNCTION add_fine(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE
        (SELECT array_agg(coalesce(a[i], 0) + coalesce(b[i], 0) ORDER BY i)
         FROM generate_series(1, greatest(cardinality(a), cardinality(b))) AS i) END
$$;

-- insert_runs as in version 1, now recording when each run becomes ready.
CREATE OR REPLACE FUNCTION insert_runs(p_now timestamptz, p_runs jsonb, p_skip bigint[])
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_ready integer;
BEGIN
    WITH fresh AS (
        INSERT INTO runs (id, seq, job, state, priority, enqueued_at, triggered_by, payload,
                          run_at, queue_pos, parked, schedule_id, slot, idempotency_key,
                          origin_run_id, ready_at)
        SELECT f.id, f.seq, f.job, CASE WHEN f.delayed THEN 'delayed' ELSE 'queued' END,
               f.priority, p_now, f.triggered_by, f.payload,
               CASE WHEN f.delayed THEN f.run_at END,
               CASE WHEN f.delayed THEN NULL ELSE f.seq END,
               NOT f.delayed AND EXISTS (SELECT 1 FROM paused_jobs p WHERE p.job = f.job),
               f.schedule_id, f.slot, f.idempotency_key, f.origin_run_id,
               CASE WHEN f.delayed THEN f.run_at ELSE p_now END
        FROM (
            -- nextval is evaluated after the ORDER BY, so places follow the given order.
            SELECT nextval('hub_seq') AS seq,
                   e.item->>'id' AS id,
                   e.item->>'job' AS job,
                   (e.item->>'priority')::smallint AS priority,
                   (e.item->>'run_at')::timestamptz AS run_at,
                   coalesce((e.item->>'run_at')::timestamptz > p_now, false) AS delayed,
                   e.item->>'triggered_by' AS triggered_by,
                   coalesce(e.item->'payload', '{}'::jsonb) AS payload,
                   e.item->>'schedule_id' AS schedule_id,
                   (e.item->>'slot')::timestamptz AS slot,
                   e.item->>'idempotency_key' AS idempotency_key,
                   e.item->>'origin_run_id' AS origin_run_id
            FROM jsonb_array_elements(p_runs) WITH ORDINALITY AS e(item, o)
            WHERE NOT (e.o = ANY (p_skip))
            ORDER BY e.o
        ) AS f
        RETURNING state
    )
    SELECT count(*) FILTER (WHERE fresh.state = 'queued') INTO v_ready FROM fresh;
    RETURN v_ready;
END
$$;


-- An attempt entry for the run's current claim (`p_run`, its row before the change), ended
-- at p_now with outcome p_outcome; p_error and p_delay_ms may be NULL.
CREATE FUNCTION attempt_entry(p_run runs, p_now timestamptz, p_outcome text, p_error jsonb,
                              p_delay_ms bigint)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'v', 1, 'n', p_run.attempt, 's', coalesce(p_run.started_at, p_now), 'f', p_now,
        'w', p_run.worker, 'o', p_outcome, 'e', p_error, 'd', p_delay_ms))
$$;

-- `p_log` with `p_entry` appended (the oldest dropped beyond 10 entries), or with `p_amend`,
-- its last entry completed by p_entry's fields (the reaper settling a stall it logged).
CREATE FUNCTION attempts_with(p_log jsonb, p_entry jsonb, p_amend boolean)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_amend AND jsonb_array_length(p_log) > 0 THEN
            jsonb_set(p_log, ARRAY[(jsonb_array_length(p_log) - 1)::text],
                      (p_log -> -1) - 'e' - 'd' || (p_entry - 'n' - 's' - 'w' - 'f'))
        WHEN jsonb_array_length(p_log) >= 10 THEN (p_log - 0) || jsonb_build_array(p_entry)
        ELSE p_log || jsonb_build_array(p_entry)
    END
$$;

-- How many entries appending to `p_log` drops (0 or 1).
CREATE FUNCTION attempts_dropping(p_log jsonb, p_amend boolean)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN (p_amend AND jsonb_array_length(p_log) > 0)
                     OR jsonb_array_length(p_log) < 10 THEN 0 ELSE 1 END
$$;


-- exchange as in version 1, now logging each settled attempt (and returning the log), and
-- counting durations and queue waits in the fine histograms.
DROP FUNCTION exchange(timestamptz, interval, text, integer, jsonb);
CREATE FUNCTION exchange(p_now timestamptz, p_lease interval, p_worker text, p_want integer,
                         p_settled jsonb)
RETURNS TABLE (
    applied boolean[], next_due timestamptz,
    id text, job text, state text, priority smallint, attempt integer,
    enqueued_at timestamptz, triggered_by text, payload jsonb, run_at timestamptz,
    started_at timestamptz, finished_at timestamptz, worker text, error jsonb,
    stalls integer, token bigint, schedule_id text, slot timestamptz,
    idempotency_key text, origin_run_id text, attempts jsonb, attempts_dropped integer
)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_applied boolean[] := '{}';
    v_next timestamptz;
    v_claimable boolean;
    v_any_paused boolean;
    v_hour bigint := floor(extract(epoch FROM p_now) / 3600);
    v_day bigint := floor(extract(epoch FROM p_now) / 86400);
    v_shard smallint := abs(hashtext(p_worker)) % 8;
BEGIN
    IF jsonb_array_length(p_settled) > 0 THEN
        WITH s AS (
            SELECT e.o, e.item->>'id' AS run_id, (e.item->>'token')::bigint AS claim_token,
                   e.item->>'kind' AS kind, e.item->'error' AS failure,
                   (e.item->>'due')::timestamptz AS due, (e.item->>'attempt')::integer AS next_attempt
            FROM jsonb_array_elements(p_settled) WITH ORDINALITY AS e(item, o)
        ), done AS (
            UPDATE runs AS r SET
                state = CASE s.kind WHEN 's' THEN 'succeeded' WHEN 'r' THEN 'retry_scheduled'
                                    ELSE 'dead' END,
                finished_at = p_now,
                error = CASE WHEN s.kind = 's' THEN NULL ELSE s.failure END,
                run_at = CASE WHEN s.kind = 'r' THEN s.due END,
                attempt = CASE WHEN s.kind = 'r' THEN s.next_attempt ELSE r.attempt END,
                lease_until = NULL,
                dead_at = CASE WHEN s.kind = 'd' THEN p_now END,
                dead_seq = CASE WHEN s.kind = 'd' THEN nextval('hub_seq') END,
                -- The entry is built from the row as it was (the claim's attempt, start and
                -- worker); the reaper settles stalls it logged already: it completes them.
                attempts = attempts_with(r.attempts, attempt_entry(
                    r, p_now,
                    CASE s.kind WHEN 's' THEN 'succeeded' WHEN 'r' THEN 'failed'
                                ELSE 'gave_up' END,
                    CASE WHEN s.kind = 's' THEN NULL ELSE s.failure END,
                    CASE WHEN s.kind = 'r'
                         THEN round(extract(epoch FROM s.due - p_now) * 1000)::bigint END),
                    r.worker = 'reaper'),
                attempts_dropped = r.attempts_dropped
                    + attempts_dropping(r.attempts, r.worker = 'reaper')
            FROM s
            WHERE r.id = s.run_id AND r.token = s.claim_token AND r.state = 'active'
            RETURNING s.o, r.job AS run_job, s.kind,
                      greatest(floor(extract(epoch FROM p_now - r.started_at) * 1000), 0)::bigint
                          AS took_ms
        ), per_job AS (
            SELECT d.run_job,
                   count(*) FILTER (WHERE d.kind = 's') AS n_succeeded,
                   count(*) FILTER (WHERE d.kind = 'r') AS n_failed,
                   count(*) FILTER (WHERE d.kind = 'd') AS n_dead,
                   fine_counts(array_agg(fine_bucket(d.took_ms))) AS took_counts,
                   sum(d.took_ms)::bigint AS took_total
            FROM done AS d GROUP BY d.run_job
        ), tally AS (
            -- Rows in key order, so concurrent settles lock counters in the same order.
            INSERT INTO job_stats AS js (job, kind, bucket, shard, succeeded, failed, dead,
                                         duration_buckets, duration_ms, last_success)
            SELECT g.run_job, b.kind, b.bucket, v_shard, g.n_succeeded, g.n_failed, g.n_dead,
                   g.took_counts, g.took_total,
                   CASE WHEN b.kind = 't' AND g.n_succeeded > 0 THEN p_now END
            FROM per_job AS g
            CROSS JOIN (VALUES ('d'::"char", v_day), ('h'::"char", v_hour), ('t'::"char", 0::bigint))
                AS b(kind, bucket)
            ORDER BY g.run_job, b.kind
            ON CONFLICT (job, kind, bucket, shard) DO UPDATE SET
                succeeded = js.succeeded + EXCLUDED.succeeded,
                failed = js.failed + EXCLUDED.failed,
                dead = js.dead + EXCLUDED.dead,
                duration_buckets = add_fine(js.duration_buckets, EXCLUDED.duration_buckets),
                duration_ms = js.duration_ms + EXCLUDED.duration_ms,
                last_success = greatest(js.last_success, EXCLUDED.last_success)
        )
        SELECT array_agg(EXISTS (SELECT 1 FROM done AS d WHERE d.o = s.o) ORDER BY s.o)
        INTO v_applied FROM s;
    END IF;

    -- Promote what came due, in due order, to the back of its queue.
    UPDATE runs AS r SET
        state = 'queued', run_at = NULL, queue_pos = d.pos, ready_at = r.run_at,
        parked = EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = r.job)
    FROM (
        SELECT o.run_id, nextval('hub_seq') AS pos
        FROM (
            SELECT x.id AS run_id, x.run_at AS due, x.seq AS run_seq FROM runs AS x
            WHERE x.state IN ('delayed', 'retry_scheduled') AND x.run_at <= p_now
            ORDER BY x.run_at, x.seq
            LIMIT 1000
            FOR UPDATE SKIP LOCKED
        ) AS o
        ORDER BY o.due, o.run_seq
    ) AS d
    WHERE r.id = d.run_id;

    SELECT min(x.run_at) INTO v_next FROM runs AS x
    WHERE x.state IN ('delayed', 'retry_scheduled');

    v_claimable := p_want > 0 AND NOT (SELECT q.paused FROM queue_flags AS q WHERE q.id = 1);
    v_any_paused := EXISTS (SELECT 1 FROM paused_jobs);
    RETURN QUERY
    WITH picked AS (
        SELECT x.id AS run_id, x.priority AS o_pri, x.queue_pos AS o_pos FROM runs AS x
        WHERE x.state = 'queued' AND NOT x.parked
          -- A run of a job paused while it was being enqueued is not parked yet: skip it.
          AND (NOT v_any_paused
               OR NOT EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = x.job))
        ORDER BY x.priority, x.queue_pos
        LIMIT CASE WHEN v_claimable THEN p_want ELSE 0 END
        FOR UPDATE OF x SKIP LOCKED
    ), claimed AS (
        UPDATE runs AS r SET
            state = 'active', token = r.token + 1, started_at = p_now, finished_at = NULL,
            worker = p_worker, lease_until = p_now + p_lease, queue_pos = NULL
        FROM picked
        WHERE r.id = picked.run_id
        RETURNING r.*, picked.o_pri, picked.o_pos
    ), waited AS (
        SELECT c.job AS run_job, greatest(floor(extract(epoch FROM
                   p_now - coalesce(c.ready_at, c.enqueued_at)) * 1000), 0)::bigint AS wait_ms
        FROM claimed AS c
    ), waits AS (
        -- Queue waits go to shards 8-15, rows no settle touches: a transaction locks its
        -- settle rows, then its wait rows, each set in key order, so two exchanges never
        -- wait on each other in a cycle (they did when both shared one worker shard).
        INSERT INTO job_stats AS js (job, kind, bucket, shard, wait_buckets, wait_ms)
        SELECT w.run_job, b.kind, b.bucket, v_shard + 8,
               fine_counts(array_agg(fine_bucket(w.wait_ms))), sum(w.wait_ms)::bigint
        FROM waited AS w
        CROSS JOIN (VALUES ('d'::"char", v_day), ('h'::"char", v_hour), ('t'::"char", 0::bigint))
            AS b(kind, bucket)
        GROUP BY w.run_job, b.kind, b.bucket
        ORDER BY w.run_job, b.kind
        ON CONFLICT (job, kind, bucket, shard) DO UPDATE SET
            wait_buckets = add_fine(js.wait_buckets, EXCLUDED.wait_buckets),
            wait_ms = js.wait_ms + EXCLUDED.wait_ms
    )
    SELECT v_applied, v_next, c.id, c.job, c.state, c.priority, c.attempt, c.enqueued_at,
           c.triggered_by, c.payload, c.run_at, c.started_at, c.finished_at, c.worker,
           c.error, c.stalls, c.token, c.schedule_id, c.slot, c.idempotency_key,
           c.origin_run_id, c.attempts, c.attempts_dropped
    FROM (SELECT 1) AS one LEFT JOIN claimed AS c ON true
    ORDER BY c.o_pri, c.o_pos;
END
$$;


-- reap as in version 1, now logging each stall as a 'stalled' attempt (with the worker that
-- lost it; a held run's entry gets its outcome when the reaper settles it).
CREATE OR REPLACE FUNCTION reap(p_now timestamptz, p_lease interval, p_max_stalls integer,
                                p_limit integer, p_notify boolean, p_channel text)
RETURNS SETOF runs
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_run record;
    v_requeued integer := 0;
    v_error jsonb := jsonb_build_object('v', 1, 'type', 'StalledError',
        'message', 'its worker stopped renewing the lease', 'traceback', '');
BEGIN
    -- Walk from the newest; each goes in front of the ones before, so the oldest ends first.
    FOR v_run IN
        SELECT o.run_id, o.run_stalls FROM (
            SELECT x.id AS run_id, x.stalls AS run_stalls, x.enqueued_at AS enq,
                   x.seq AS run_seq
            FROM runs AS x
            WHERE x.state = 'active' AND x.lease_until <= p_now
            ORDER BY x.lease_until
            LIMIT p_limit
            FOR UPDATE SKIP LOCKED
        ) AS o
        ORDER BY o.enq DESC, o.run_seq DESC
    LOOP
        IF v_run.run_stalls + 1 <= p_max_stalls THEN
            RETURN QUERY
            WITH u AS (
                UPDATE runs AS r SET
                    state = 'queued', stalls = r.stalls + 1, started_at = NULL, worker = NULL,
                    lease_until = NULL, queue_pos = -nextval('front_seq'), ready_at = p_now,
                    parked = EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = r.job),
                    attempts = attempts_with(
                        r.attempts, attempt_entry(r, p_now, 'stalled', v_error, NULL), false),
                    attempts_dropped = r.attempts_dropped + attempts_dropping(r.attempts, false)
                WHERE r.id = v_run.run_id
                RETURNING r.*
            ) SELECT * FROM u;
            v_requeued := v_requeued + 1;
        ELSE
            RETURN QUERY
            WITH u AS (
                UPDATE runs AS r SET
                    stalls = r.stalls + 1, token = r.token + 1, worker = 'reaper',
                    lease_until = p_now + p_lease,
                    attempts = attempts_with(
                        r.attempts, attempt_entry(r, p_now, 'stalled', v_error, NULL), false),
                    attempts_dropped = r.attempts_dropped + attempts_dropping(r.attempts, false)
                WHERE r.id = v_run.run_id
                RETURNING r.*
            ) SELECT * FROM u;
        END IF;
    END LOOP;

    -- The jobs that have parked runs, one index probe each (a loose index scan), and of
    -- those the ones no longer paused: their runs leave the parking, in place.
    WITH RECURSIVE parked_jobs(job) AS (
        (SELECT x.job FROM runs AS x WHERE x.state = 'queued' AND x.parked
         ORDER BY x.job LIMIT 1)
        UNION ALL
        SELECT (SELECT x.job FROM runs AS x
                WHERE x.state = 'queued' AND x.parked AND x.job > pj.job
                ORDER BY x.job LIMIT 1)
        FROM parked_jobs AS pj WHERE pj.job IS NOT NULL
    )
    UPDATE runs AS r SET parked = false
    WHERE r.state = 'queued' AND r.parked
      AND r.job IN (SELECT pj.job FROM parked_jobs AS pj
                    WHERE pj.job IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = pj.job));

    IF v_requeued > 0 AND p_notify THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
END
$$;


-- Return claimed runs to the front of their queue, in the order given (the oldest claim
-- first in line). p_claims: JSON array of {id, token}. With p_interrupted, they were running
-- when their worker stopped: each counts a stall and logs an 'interrupted' attempt.
-- Returns how many.
DROP FUNCTION hand_back(jsonb, boolean, text);
CREATE FUNCTION hand_back(p_claims jsonb, p_now timestamptz, p_interrupted boolean,
                          p_notify boolean, p_channel text)
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_claim record;
    v_returned integer := 0;
BEGIN
    FOR v_claim IN
        SELECT e.item->>'id' AS run_id, (e.item->>'token')::bigint AS claim_token
        FROM jsonb_array_elements(p_claims) WITH ORDINALITY AS e(item, o)
        ORDER BY e.o DESC
    LOOP
        UPDATE runs AS r SET
            state = 'queued', started_at = NULL, worker = NULL, lease_until = NULL,
            queue_pos = -nextval('front_seq'),
            parked = EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = r.job),
            stalls = r.stalls + CASE WHEN p_interrupted THEN 1 ELSE 0 END,
            ready_at = CASE WHEN p_interrupted THEN p_now ELSE r.ready_at END,
            attempts = CASE WHEN p_interrupted
                THEN attempts_with(r.attempts,
                                   attempt_entry(r, p_now, 'interrupted', NULL, NULL), false)
                ELSE r.attempts END,
            attempts_dropped = r.attempts_dropped
                + CASE WHEN p_interrupted THEN attempts_dropping(r.attempts, false) ELSE 0 END
        WHERE r.id = v_claim.run_id AND r.token = v_claim.claim_token AND r.state = 'active';
        IF FOUND THEN
            v_returned := v_returned + 1;
        END IF;
    END LOOP;
    IF v_returned > 0 AND p_notify THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
    RETURN v_returned;
END
$$;
