-- hub_scheduler on PostgreSQL, schema version 9: workflows (domain/workflow.py).
--
-- runs.workflow_id, runs.workflow_step: the workflow a run is a step of, and the step's name
-- (NULL for other runs); a dead-letter retry keeps them, so the workflow resumes.
-- workflows: each workflow's document (versioned JSON, adapters/workflow_json.py), saved
-- whole under a version number that a save must still find (compare and set).
-- workflow_events: what a worker has to apply to workflows: the id of a step's run that
-- ended (or that a dead-letter retry created), written by triggers in the transaction that
-- made the change, or a new workflow's id. Applied events are deleted.

ALTER TABLE runs ADD COLUMN workflow_id text, ADD COLUMN workflow_step text;

CREATE TABLE workflows (
    id          text PRIMARY KEY,
    seq         bigint NOT NULL DEFAULT nextval('hub_seq'),
    created_at  timestamptz NOT NULL,
    saved_at    timestamptz NOT NULL,
    version     integer NOT NULL,
    doc         jsonb NOT NULL
);
CREATE INDEX workflows_newest ON workflows (created_at DESC, seq DESC);

CREATE TABLE workflow_events (
    id  text PRIMARY KEY,
    at  timestamptz NOT NULL
);
CREATE INDEX workflow_events_at ON workflow_events (at);

-- The event's time is the change's own (finished_at or enqueued_at: the caller's clock, as
-- for every time the library stores).
CREATE FUNCTION workflow_event() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO workflow_events (id, at)
    VALUES (NEW.id, coalesce(CASE WHEN TG_OP = 'INSERT' THEN NEW.enqueued_at
                                  ELSE NEW.finished_at END, now()))
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_workflow_ended AFTER UPDATE OF state ON runs
FOR EACH ROW WHEN (NEW.workflow_id IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state
                   AND NEW.state IN ('succeeded', 'dead', 'cancelled'))
EXECUTE FUNCTION workflow_event();

CREATE TRIGGER runs_workflow_retried AFTER INSERT ON runs
FOR EACH ROW WHEN (NEW.workflow_id IS NOT NULL AND NEW.origin_run_id IS NOT NULL)
EXECUTE FUNCTION workflow_event();


-- insert_runs as in version 8, now storing each run's workflow and step.
CREATE OR REPLACE FUNCTION insert_runs(p_now timestamptz, p_runs jsonb, p_skip bigint[])
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_ready integer;
BEGIN
    WITH fresh AS (
        INSERT INTO runs (id, seq, job, state, priority, enqueued_at, triggered_by, payload,
                          run_at, queue_pos, parked, schedule_id, slot, idempotency_key,
                          origin_run_id, ready_at, trace_context, workflow_id, workflow_step)
        SELECT f.id, f.seq, f.job, CASE WHEN f.delayed THEN 'delayed' ELSE 'queued' END,
               f.priority, p_now, f.triggered_by, f.payload,
               CASE WHEN f.delayed THEN f.run_at END,
               CASE WHEN f.delayed THEN NULL ELSE f.seq END,
               NOT f.delayed AND EXISTS (SELECT 1 FROM paused_jobs p WHERE p.job = f.job),
               f.schedule_id, f.slot, f.idempotency_key, f.origin_run_id,
               CASE WHEN f.delayed THEN f.run_at ELSE p_now END, f.trace_context,
               f.workflow_id, f.workflow_step
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
                   e.item->>'origin_run_id' AS origin_run_id,
                   nullif(e.item->'trace_context', 'null'::jsonb) AS trace_context,
                   e.item->>'workflow_id' AS workflow_id,
                   e.item->>'workflow_step' AS workflow_step
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


-- retry_dead as in version 8, now carrying the dead run's workflow step to the new run.
CREATE OR REPLACE FUNCTION retry_dead(p_now timestamptz, p_pairs jsonb, p_notify boolean, p_channel text)
RETURNS SETOF text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_runs jsonb;
    v_taken text[];
BEGIN
    WITH pairs AS (
        SELECT e.item->>'dead' AS dead_id, e.item->>'new' AS new_id, e.o
        FROM jsonb_array_elements(p_pairs) WITH ORDINALITY AS e(item, o)
    ), taken AS (
        UPDATE runs AS r SET dead_at = NULL, dead_seq = NULL
        FROM pairs
        WHERE r.id = pairs.dead_id AND r.dead_at IS NOT NULL
        RETURNING pairs.o, pairs.new_id, r.id AS dead_id, r.job AS dead_job,
                  r.priority AS dead_priority, r.payload AS dead_payload,
                  r.trace_context AS dead_trace_context,
                  r.workflow_id AS dead_workflow_id, r.workflow_step AS dead_workflow_step
    )
    SELECT jsonb_agg(jsonb_build_object(
               'id', t.new_id, 'job', t.dead_job, 'priority', t.dead_priority,
               'triggered_by', 'dead_letter_retry', 'payload', t.dead_payload,
               'origin_run_id', t.dead_id, 'trace_context', t.dead_trace_context,
               'workflow_id', t.dead_workflow_id, 'workflow_step', t.dead_workflow_step)
               ORDER BY t.o),
           array_agg(t.dead_id ORDER BY t.o)
    INTO v_runs, v_taken
    FROM taken AS t;
    IF v_runs IS NOT NULL THEN
        IF insert_runs(p_now, v_runs, '{}') > 0 AND p_notify THEN
            PERFORM pg_notify(p_channel, '');
        END IF;
        RETURN QUERY SELECT unnest(v_taken);
    END IF;
END
$$;


-- exchange as in version 8, now returning each claimed run's workflow and step.
DROP FUNCTION exchange(timestamptz, interval, text, integer, jsonb);
CREATE FUNCTION exchange(p_now timestamptz, p_lease interval, p_worker text, p_want integer,
                         p_settled jsonb)
RETURNS TABLE (
    applied boolean[], next_due timestamptz,
    id text, job text, state text, priority smallint, attempt integer,
    enqueued_at timestamptz, triggered_by text, payload jsonb, run_at timestamptz,
    started_at timestamptz, finished_at timestamptz, worker text, error jsonb,
    stalls integer, token bigint, schedule_id text, slot timestamptz,
    idempotency_key text, origin_run_id text, attempts jsonb, attempts_dropped integer,
    trace_context jsonb, first_attempt_trace jsonb, workflow_id text, workflow_step text
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
           c.origin_run_id, c.attempts, c.attempts_dropped, c.trace_context,
           c.first_attempt_trace, c.workflow_id, c.workflow_step
    FROM (SELECT 1) AS one LEFT JOIN claimed AS c ON true
    ORDER BY c.o_pri, c.o_pos;
END
$$;
