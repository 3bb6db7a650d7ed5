-- hub_scheduler on PostgreSQL, schema version 5: flow control per job — global concurrency
-- (max_running) and rate limits.
--
-- job_limits holds each limited job's limits, as its workers declare them at start. A claim of a
-- run of such a job (queued -> active) takes one advisory lock (the same for every limited
-- job, so two claims never wait on each other in a cycle), counts the job's active runs and,
-- at the limit, holds the run instead: it stays queued, `held` and parked, so no claim looks
-- at it again (no busy polling) and the exchange does not hand it out. A run that leaves
-- 'active' after a claim under a limit (`limited`) releases the oldest held run of its job
-- under the same lock; reap releases what a limit has room for, as a safety net. The limit
-- is tied to the lease: a dead worker's run leaves 'active' when the reaper recovers it.
-- A rate limit is a sliding window (rate_state keeps each key's starts within the last
-- window): a claim over it moves the run to 'delayed' until the window has room, when it
-- checks again, attempt unchanged. Jobs without limits pay one
-- trigger call per claim (a lookup in an empty table) and none per settle.

CREATE TABLE job_limits (
    job               text PRIMARY KEY,
    max_running       integer CHECK (max_running > 0),
    -- The rate: at most rate_count starts in any window of rate_window_ms, per value of
    -- payload field rate_key (all runs share one key without it).
    rate_count        integer CHECK (rate_count > 0),
    rate_window_ms    bigint CHECK (rate_window_ms > 0),
    rate_key          text
);

CREATE TABLE rate_state (
    job    text NOT NULL,
    key    text NOT NULL,
    -- The starts within the last window (older ones are dropped as it is written).
    starts timestamptz[] NOT NULL,
    PRIMARY KEY (job, key)
);

ALTER TABLE runs ADD COLUMN held boolean NOT NULL DEFAULT false;
ALTER TABLE runs ADD COLUMN limited boolean NOT NULL DEFAULT false;

-- Active runs per job: what a limited claim counts.
CREATE INDEX runs_active_job ON runs (job) WHERE state = 'active';

CREATE FUNCTION limits_lock() RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':max_running', 0))
$$;

-- Release up to the room left under `p_limit` of job `p_job`'s held runs, oldest first.
CREATE FUNCTION release_held(p_job text, p_limit integer) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_room integer;
    v_released integer;
BEGIN
    PERFORM limits_lock();
    SELECT p_limit - count(*) INTO v_room FROM runs WHERE job = p_job AND state = 'active';
    IF v_room <= 0 THEN
        RETURN 0;
    END IF;
    UPDATE runs AS r SET held = false,
        parked = EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = r.job)
    WHERE r.id IN (
        SELECT x.id FROM runs AS x
        WHERE x.job = p_job AND x.state = 'queued' AND x.parked AND x.held
        ORDER BY x.priority, x.queue_pos
        LIMIT v_room
        FOR UPDATE SKIP LOCKED
    );
    GET DIAGNOSTICS v_released = ROW_COUNT;
    RETURN v_released;
END
$$;

CREATE FUNCTION claim_within_limit() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_limits job_limits;
    v_running integer;
    v_now timestamptz;
    v_key text;
    v_starts timestamptz[];
    v_n integer;
    v_slot timestamptz;
BEGIN
    SELECT * INTO v_limits FROM job_limits AS l WHERE l.job = NEW.job;
    IF NOT FOUND THEN
        NEW.limited := false;
        RETURN NEW;
    END IF;
    PERFORM limits_lock();
    IF v_limits.max_running IS NOT NULL THEN
        -- A VOLATILE function sees the rows its statement changed so far: claims of the
        -- same job earlier in this exchange count.
        SELECT count(*) INTO v_running FROM runs WHERE job = NEW.job AND state = 'active';
        IF v_running >= v_limits.max_running THEN
            -- At the limit: the run stays queued, held aside in its place.
            OLD.held := true;
            OLD.parked := true;
            RETURN OLD;
        END IF;
    END IF;
    IF v_limits.rate_count IS NOT NULL THEN
        v_now := NEW.started_at;  -- the exchange's clock
        v_key := CASE WHEN v_limits.rate_key IS NULL THEN ''
                      ELSE coalesce(NEW.payload ->> v_limits.rate_key, '') END;
        -- The key's starts within the last window, oldest first.
        SELECT array(SELECT x FROM unnest(s.starts) AS x
                     WHERE x > v_now - v_limits.rate_window_ms * interval '1 ms' ORDER BY x)
        INTO v_starts FROM rate_state AS s WHERE s.job = NEW.job AND s.key = v_key;
        v_starts := coalesce(v_starts, '{}');
        v_n := coalesce(array_length(v_starts, 1), 0);
        IF v_n >= v_limits.rate_count THEN
            -- Over the rate: delayed until one window after the count-th latest start,
            -- when it checks again.
            v_slot := v_starts[v_n - v_limits.rate_count + 1]
                      + v_limits.rate_window_ms * interval '1 ms';
            OLD.state := 'delayed';
            OLD.run_at := v_slot;
            OLD.ready_at := v_slot;
            OLD.queue_pos := NULL;
            RETURN OLD;
        END IF;
        INSERT INTO rate_state AS s (job, key, starts)
        VALUES (NEW.job, v_key, v_starts || v_now)
        ON CONFLICT (job, key) DO UPDATE SET starts = EXCLUDED.starts;
    END IF;
    NEW.limited := v_limits.max_running IS NOT NULL;
    NEW.held := false;
    RETURN NEW;
END
$$;

CREATE TRIGGER runs_claim_within_limit BEFORE UPDATE OF state ON runs
FOR EACH ROW WHEN (OLD.state = 'queued' AND NEW.state = 'active')
EXECUTE FUNCTION claim_within_limit();

CREATE FUNCTION left_limited() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_max integer;
BEGIN
    SELECT l.max_running INTO v_max FROM job_limits AS l WHERE l.job = NEW.job;
    IF v_max IS NOT NULL THEN
        PERFORM release_held(NEW.job, v_max);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_left_limited AFTER UPDATE OF state ON runs
FOR EACH ROW WHEN (OLD.state = 'active' AND NEW.state <> 'active' AND OLD.limited)
EXECUTE FUNCTION left_limited();

-- reap as in version 2, leaving held runs parked when it unparks the runs of resumed jobs,
-- and releasing held runs a limit has room for.
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
    WHERE r.state = 'queued' AND r.parked AND NOT r.held
      AND r.job IN (SELECT pj.job FROM parked_jobs AS pj
                    WHERE pj.job IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = pj.job));

    -- A safety net for held runs: release those a limit has room for (a release is
    -- normally done by the run that leaves 'active').
    IF EXISTS (SELECT 1 FROM job_limits) THEN
        PERFORM release_held(l.job, l.max_running) FROM job_limits AS l
        WHERE l.max_running IS NOT NULL;
        DELETE FROM rate_state AS s
        WHERE s.starts[array_upper(s.starts, 1)] < p_now - interval '8 days';
    END IF;

    IF v_requeued > 0 AND p_notify THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
END
$$;
