-- hub_scheduler on PostgreSQL, schema version 4: the W3C trace context of a run.
--
-- trace_context: {"traceparent": text, "tracestate": text} (tracestate optional) as an
-- OpenTelemetry propagator injected it at enqueue, or NULL (not traced, a schedule's fire, a
-- run stored before version 4). The library checks its size before writing. A dead-letter
-- retry keeps the dead run's context, so its trace links back to the first one.

ALTER TABLE runs ADD COLUMN trace_context jsonb;

-- insert_runs as in version 2, now storing each run's trace context.
CREATE OR REPLACE FUNCTION insert_runs(p_now timestamptz, p_runs jsonb, p_skip bigint[])
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_ready integer;
BEGIN
    WITH fresh AS (
        INSERT INTO runs (id, seq, job, state, priority, enqueued_at, triggered_by, payload,
                          run_at, queue_pos, parked, schedule_id, slot, idempotency_key,
                          origin_run_id, ready_at, trace_context)
        SELECT f.id, f.seq, f.job, CASE WHEN f.delayed THEN 'delayed' ELSE 'queued' END,
               f.priority, p_now, f.triggered_by, f.payload,
               CASE WHEN f.delayed THEN f.run_at END,
               CASE WHEN f.delayed THEN NULL ELSE f.seq END,
               NOT f.delayed AND EXISTS (SELECT 1 FROM paused_jobs p WHERE p.job = f.job),
               f.schedule_id, f.slot, f.idempotency_key, f.origin_run_id,
               CASE WHEN f.delayed THEN f.run_at ELSE p_now END, f.trace_context
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
                   nullif(e.item->'trace_context', 'null'::jsonb) AS trace_context
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


-- retry_dead as in version 1, now carrying the dead run's trace context to the new run.
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
                  r.trace_context AS dead_trace_context
    )
    SELECT jsonb_agg(jsonb_build_object(
               'id', t.new_id, 'job', t.dead_job, 'priority', t.dead_priority,
               'triggered_by', 'dead_letter_retry', 'payload', t.dead_payload,
               'origin_run_id', t.dead_id, 'trace_context', t.dead_trace_context)
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


-- The trace context of run p_id, read with a snapshot of its own (a plpgsql function is never
-- inlined): called per row of exchange's result, it sees runs that committed after the
-- calling statement began, as the claim inside exchange did.
CREATE FUNCTION trace_context_of(p_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
BEGIN
    RETURN (SELECT r.trace_context FROM runs AS r WHERE r.id = p_id);
END
$$;
