-- hub_scheduler on PostgreSQL, schema version 1: tables, indexes and the functions that make
-- each multi-step state change one round trip.
--
-- The migration runner (schema.py) runs this file inside one transaction with search_path set
-- to the hub's own schema (named from the hub's prefix), so the names below are unqualified.
-- Every function captures that search_path (SET search_path FROM CURRENT), so it finds its
-- tables whichever connection calls it, the application's own included (transactional enqueue).
--
-- Time never comes from the database: every instant (now, leases, due times) is a parameter,
-- so leases, delays, retention and statistics follow the caller's Clock (a fake one in tests).

-- One sequence orders everything that needs a total order: a run's place in history (seq),
-- its place at the back of its queue (queue_pos), dead letters, audit entries.
CREATE SEQUENCE hub_seq AS bigint;
-- Places at the front of a queue are negative and decrease: -nextval(front_seq).
CREATE SEQUENCE front_seq AS bigint;

CREATE TABLE runs (
    id              text PRIMARY KEY,
    seq             bigint NOT NULL,
    job             text NOT NULL,
    state           text NOT NULL CHECK (state IN (
                        'queued', 'delayed', 'active', 'succeeded', 'retry_scheduled',
                        'dead', 'cancelled')),
    priority        smallint NOT NULL,
    attempt         integer NOT NULL DEFAULT 1,
    enqueued_at     timestamptz NOT NULL,
    triggered_by    text NOT NULL,
    payload         jsonb NOT NULL,
    -- Not before (delayed runs and waiting retries only).
    run_at          timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    worker          text,
    error           jsonb,
    stalls          integer NOT NULL DEFAULT 0,
    -- Fencing token: grows with every claim; a settle carrying an older one is refused.
    token           bigint NOT NULL DEFAULT 0,
    -- Active runs only.
    lease_until     timestamptz,
    -- Queued runs only: the place in the queue of its priority, smallest first.
    queue_pos       bigint,
    -- Queued runs of a paused job wait aside, keeping their place.
    parked          boolean NOT NULL DEFAULT false,
    schedule_id     text,
    slot            timestamptz,
    idempotency_key text,
    origin_run_id   text,
    -- In the dead-letter queue since (a dead run leaves it when retried or deleted).
    dead_at         timestamptz,
    dead_seq        bigint
);

-- Claims: ready runs by priority, then place. Parked runs are not in it.
CREATE INDEX runs_ready ON runs (priority, queue_pos) WHERE state = 'queued' AND NOT parked;
-- Resuming a job and counting parked runs.
CREATE INDEX runs_parked ON runs (job, priority, queue_pos) WHERE state = 'queued' AND parked;
-- Delayed runs and retries coming due.
CREATE INDEX runs_due ON runs (run_at, seq) WHERE state IN ('delayed', 'retry_scheduled');
-- The reaper: expired leases.
CREATE INDEX runs_leases ON runs (lease_until) WHERE state = 'active';
-- History newest first (also what cleaning walks), overall and per job.
CREATE INDEX runs_history ON runs (enqueued_at DESC, seq DESC);
CREATE INDEX runs_job_history ON runs (job, enqueued_at DESC, seq DESC);
-- The dead-letter queue, newest first.
CREATE INDEX runs_dead ON runs (dead_at DESC, dead_seq DESC) WHERE dead_at IS NOT NULL;

-- An idempotency key names the first run enqueued with it until expires_at (caller's clock).
CREATE TABLE idempotency (
    idem_key    text PRIMARY KEY,
    run_id      text NOT NULL,
    expires_at  timestamptz NOT NULL
);

CREATE TABLE queue_flags (
    id      smallint PRIMARY KEY CHECK (id = 1),
    paused  boolean NOT NULL
);
INSERT INTO queue_flags (id, paused) VALUES (1, false);

CREATE TABLE paused_jobs (
    job text PRIMARY KEY
);

-- Outcome counters per job: one row per hour ('h', hours since the epoch), day ('d', days)
-- and in total ('t', bucket 0), each split in shards by worker so that workers settling the
-- same job do not queue behind one row lock. durations[k + 1] counts attempts that lasted
-- under 2^k ms (k = 0..40), as the Redis backend counts them.
CREATE TABLE job_stats (
    job           text NOT NULL,
    kind          "char" NOT NULL CHECK (kind IN ('h', 'd', 't')),
    bucket        bigint NOT NULL,
    shard         smallint NOT NULL,
    succeeded     bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    dead          bigint NOT NULL DEFAULT 0,
    durations     bigint[],
    last_success  timestamptz,
    PRIMARY KEY (job, kind, bucket, shard)
);

CREATE TABLE schedules (
    id            text PRIMARY KEY,
    job           text NOT NULL,
    -- The definition as versioned JSON ({"v": 1, ...}, see codec.py).
    definition    jsonb NOT NULL,
    declared      boolean NOT NULL,
    paused        boolean NOT NULL DEFAULT false,
    next_fire     timestamptz,
    last_fire     timestamptz,
    last_outcome  text,
    runs          bigint NOT NULL DEFAULT 0,
    -- Grows with every change: firing is a compare-and-advance on it.
    version       bigint NOT NULL DEFAULT 1
);
CREATE INDEX schedules_due ON schedules (next_fire) WHERE next_fire IS NOT NULL;

-- The slot ledger: what became of every slot of every schedule (kept after a delete).
CREATE TABLE slots (
    schedule_id  text NOT NULL,
    slot         timestamptz NOT NULL,
    outcome      text NOT NULL,
    run_id       text,
    recorded_at  timestamptz NOT NULL,
    -- More than 1 when a long outage's oldest slots were recorded in bulk.
    covers       bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (schedule_id, slot)
);

CREATE TABLE audit (
    id          text PRIMARY KEY,
    seq         bigint NOT NULL,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    roles       text[] NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL,
    outcome     text NOT NULL,
    request_id  text,
    client      text,
    before      jsonb,
    after       jsonb,
    detail      text,
    channel     text
);
CREATE INDEX audit_newest ON audit (at DESC, seq DESC);

CREATE TABLE workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    concurrency  integer NOT NULL,
    active       integer NOT NULL,
    seen_at      timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);

CREATE TABLE schedulers (
    id            text PRIMARY KEY,
    seen_at       timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    lateness_p50  interval,
    lateness_p99  interval
);

-- Small values shared by every process (the admin API's rate limits).
CREATE TABLE shared (
    key         text PRIMARY KEY,
    value       bytea NOT NULL,
    expires_at  timestamptz
);


-- The power-of-two bucket of a duration in ms: 0 below 1 ms, else k with 2^(k-1) <= ms < 2^k,
-- at most 40 (the Redis backend's tally_attempt, in exact integer arithmetic).
CREATE FUNCTION duration_bucket(ms bigint) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(width_bucket(ms, '{1,2,4,8,16,32,64,128,256,512,1024,2048,4096,8192,16384,32768,65536,131072,262144,524288,1048576,2097152,4194304,8388608,16777216,33554432,67108864,134217728,268435456,536870912,1073741824,2147483648,4294967296,8589934592,17179869184,34359738368,68719476736,137438953472,274877906944,549755813888}'::bigint[]), 0)
$$;

-- Bucket numbers -> counts per bucket (41 of them).
CREATE FUNCTION bucket_counts(buckets integer[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg((SELECT count(*) FROM unnest(buckets) AS b WHERE b = i) ORDER BY i)
    FROM generate_series(0, 40) AS i
$$;

CREATE FUNCTION add_counts(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(coalesce(a[i], 0) + coalesce(b[i], 0) ORDER BY i)
    FROM generate_series(1, 41) AS i
$$;


-- Store new runs, in the order given: queued at the back of their queue (parked when their
-- job is paused), or delayed when run_at is after p_now. p_runs is a JSON array of objects
-- {id, job, priority, run_at, triggered_by, payload, schedule_id, slot, idempotency_key,
-- origin_run_id}; entries whose 1-based index is in p_skip are left out.
-- Returns how many runs became ready.
CREATE FUNCTION insert_runs(p_now timestamptz, p_runs jsonb, p_skip bigint[])
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_ready integer;
BEGIN
    WITH fresh AS (
        INSERT INTO runs (id, seq, job, state, priority, enqueued_at, triggered_by, payload,
                          run_at, queue_pos, parked, schedule_id, slot, idempotency_key,
                          origin_run_id)
        SELECT f.id, f.seq, f.job, CASE WHEN f.delayed THEN 'delayed' ELSE 'queued' END,
               f.priority, p_now, f.triggered_by, f.payload,
               CASE WHEN f.delayed THEN f.run_at END,
               CASE WHEN f.delayed THEN NULL ELSE f.seq END,
               NOT f.delayed AND EXISTS (SELECT 1 FROM paused_jobs p WHERE p.job = f.job),
               f.schedule_id, f.slot, f.idempotency_key, f.origin_run_id
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


-- Enqueue a batch (the insert_runs format, plus window_us per entry with an idempotency key).
-- A key used within its window enqueues nothing: its 0-based index and the first run's id
-- are returned. NOTIFYs p_channel when runs became ready and p_notify is set.
CREATE FUNCTION enqueue(p_now timestamptz, p_runs jsonb, p_notify boolean, p_channel text)
RETURNS TABLE (repeat_index bigint, first_run_id text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_item record;
    v_first text;
    v_skip bigint[] := '{}';
BEGIN
    FOR v_item IN
        SELECT e.o, e.item->>'id' AS new_id, e.item->>'idempotency_key' AS idem,
               (e.item->>'window_us')::bigint AS window_us
        FROM jsonb_array_elements(p_runs) WITH ORDINALITY AS e(item, o)
        WHERE e.item->>'idempotency_key' IS NOT NULL
        ORDER BY e.o
    LOOP
        INSERT INTO idempotency AS i (idem_key, run_id, expires_at)
        VALUES (v_item.idem, v_item.new_id, p_now + v_item.window_us * interval '1 microsecond')
        ON CONFLICT (idem_key) DO UPDATE
            SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at
            WHERE i.expires_at <= p_now;
        IF NOT FOUND THEN
            SELECT i.run_id INTO v_first FROM idempotency AS i WHERE i.idem_key = v_item.idem;
            repeat_index := v_item.o - 1;
            first_run_id := v_first;
            RETURN NEXT;
            v_skip := v_skip || v_item.o;
        END IF;
    END LOOP;
    IF insert_runs(p_now, p_runs, v_skip) > 0 AND p_notify THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
END
$$;


-- A worker's round trip: settle finished attempts, count them, promote due delayed runs,
-- then claim up to p_want ready runs (strict priority, then place), in one transaction.
-- p_settled: JSON array of {id, token, kind ('s' succeeded | 'r' retry | 'd' dead), error,
-- due, attempt}. Returns one row per claimed run, in claim order (one row of NULL run columns
-- when nothing was claimed); every row carries the settle flags and the next due instant.
CREATE FUNCTION exchange(p_now timestamptz, p_lease interval, p_worker text, p_want integer,
                         p_settled jsonb)
RETURNS TABLE (
    applied boolean[], next_due timestamptz,
    id text, job text, state text, priority smallint, attempt integer,
    enqueued_at timestamptz, triggered_by text, payload jsonb, run_at timestamptz,
    started_at timestamptz, finished_at timestamptz, worker text, error jsonb,
    stalls integer, token bigint, schedule_id text, slot timestamptz,
    idempotency_key text, origin_run_id text
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
                dead_seq = CASE WHEN s.kind = 'd' THEN nextval('hub_seq') END
            FROM s
            WHERE r.id = s.run_id AND r.token = s.claim_token AND r.state = 'active'
            RETURNING s.o, r.job AS run_job, s.kind,
                      duration_bucket(floor(extract(epoch FROM p_now - r.started_at) * 1000)::bigint)
                          AS took
        ), per_job AS (
            SELECT d.run_job,
                   count(*) FILTER (WHERE d.kind = 's') AS n_succeeded,
                   count(*) FILTER (WHERE d.kind = 'r') AS n_failed,
                   count(*) FILTER (WHERE d.kind = 'd') AS n_dead,
                   bucket_counts(array_agg(d.took)) AS took_counts
            FROM done AS d GROUP BY d.run_job
        ), tally AS (
            -- Rows in key order, so concurrent settles lock counters in the same order.
            INSERT INTO job_stats AS js (job, kind, bucket, shard, succeeded, failed, dead,
                                         durations, last_success)
            SELECT g.run_job, b.kind, b.bucket, v_shard, g.n_succeeded, g.n_failed, g.n_dead,
                   CASE WHEN b.kind = 't' THEN NULL ELSE g.took_counts END,
                   CASE WHEN b.kind = 't' AND g.n_succeeded > 0 THEN p_now END
            FROM per_job AS g
            CROSS JOIN (VALUES ('d'::"char", v_day), ('h'::"char", v_hour), ('t'::"char", 0::bigint))
                AS b(kind, bucket)
            ORDER BY g.run_job, b.kind
            ON CONFLICT (job, kind, bucket, shard) DO UPDATE SET
                succeeded = js.succeeded + EXCLUDED.succeeded,
                failed = js.failed + EXCLUDED.failed,
                dead = js.dead + EXCLUDED.dead,
                durations = CASE WHEN EXCLUDED.durations IS NULL THEN js.durations
                                 ELSE add_counts(js.durations, EXCLUDED.durations) END,
                last_success = greatest(js.last_success, EXCLUDED.last_success)
        )
        SELECT array_agg(EXISTS (SELECT 1 FROM done AS d WHERE d.o = s.o) ORDER BY s.o)
        INTO v_applied FROM s;
    END IF;

    -- Promote what came due, in due order, to the back of its queue.
    UPDATE runs AS r SET
        state = 'queued', run_at = NULL, queue_pos = d.pos,
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
    )
    SELECT v_applied, v_next, c.id, c.job, c.state, c.priority, c.attempt, c.enqueued_at,
           c.triggered_by, c.payload, c.run_at, c.started_at, c.finished_at, c.worker,
           c.error, c.stalls, c.token, c.schedule_id, c.slot, c.idempotency_key,
           c.origin_run_id
    FROM (SELECT 1) AS one LEFT JOIN claimed AS c ON true
    ORDER BY c.o_pri, c.o_pos;
END
$$;


-- Recover runs whose lease expired. One stalled at most p_max_stalls times goes back to the
-- front of its queue (returned with state 'queued'); one stalled more often is held for the
-- caller under a fresh token and lease (returned with state 'active', worker 'reaper').
-- Runs recovered together keep their enqueue order at the front. Also unparks runs of jobs
-- no longer paused (a resume racing a promotion), so nothing stays parked for good.
CREATE FUNCTION reap(p_now timestamptz, p_lease interval, p_max_stalls integer,
                     p_limit integer, p_notify boolean, p_channel text)
RETURNS SETOF runs
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_run record;
    v_requeued integer := 0;
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
                    lease_until = NULL, queue_pos = -nextval('front_seq'),
                    parked = EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = r.job)
                WHERE r.id = v_run.run_id
                RETURNING r.*
            ) SELECT * FROM u;
            v_requeued := v_requeued + 1;
        ELSE
            RETURN QUERY
            WITH u AS (
                UPDATE runs AS r SET
                    stalls = r.stalls + 1, token = r.token + 1, worker = 'reaper',
                    lease_until = p_now + p_lease
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


-- Return claimed, never-started runs to the front of their queue, in the order given (the
-- oldest claim first in line). p_claims: JSON array of {id, token}. Returns how many.
CREATE FUNCTION hand_back(p_claims jsonb, p_notify boolean, p_channel text)
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
            parked = EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = r.job)
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


-- Retry dead letters as new runs linked to them. p_pairs: JSON array of {dead, new} ids.
-- Returns the ids of the dead letters that were still there (and are now retried).
CREATE FUNCTION retry_dead(p_now timestamptz, p_pairs jsonb, p_notify boolean, p_channel text)
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
                  r.priority AS dead_priority, r.payload AS dead_payload
    )
    SELECT jsonb_agg(jsonb_build_object(
               'id', t.new_id, 'job', t.dead_job, 'priority', t.dead_priority,
               'triggered_by', 'dead_letter_retry', 'payload', t.dead_payload,
               'origin_run_id', t.dead_id) ORDER BY t.o),
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


-- Fire a schedule's due slots: compare-and-advance, in one transaction. The row lock and
-- the version check let exactly one of any number of racing schedulers record each slot;
-- the others get NULL and change nothing. Enqueues p_runs (insert_runs format) unless the
-- job is paused (then its slots are ledgered as paused), ledgers p_ledger (JSON array of
-- {slot, outcome, index (into p_runs, or -1), count}), drops ledger entries older than the
-- retention and advances the schedule to p_next. Returns the enqueued run ids in ledger order.
CREATE FUNCTION fire(p_id text, p_version bigint, p_now timestamptz, p_next timestamptz,
                     p_fired integer, p_last timestamptz, p_last_outcome text,
                     p_retention interval, p_ledger jsonb, p_runs jsonb, p_notify boolean,
                     p_channel text)
RETURNS text[]
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_paused boolean;
    v_ids text[];
    v_last text;
    v_ready integer := 0;
BEGIN
    PERFORM 1 FROM schedules AS s WHERE s.id = p_id AND s.version = p_version FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_paused := jsonb_array_length(p_runs) > 0
        AND EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = p_runs->0->>'job');
    IF NOT v_paused AND jsonb_array_length(p_runs) > 0 THEN
        v_ready := insert_runs(p_now, p_runs, '{}');
    END IF;

    WITH entries AS (
        SELECT e.o, (e.item->>'slot')::timestamptz AS at_slot,
               CASE WHEN (e.item->>'index')::integer >= 0 AND v_paused THEN 'paused'
                    ELSE e.item->>'outcome' END AS slot_outcome,
               CASE WHEN (e.item->>'index')::integer >= 0 AND NOT v_paused
                    THEN p_runs->((e.item->>'index')::integer)->>'id' END AS slot_run,
               coalesce((e.item->>'count')::bigint, 1) AS slot_covers
        FROM jsonb_array_elements(p_ledger) WITH ORDINALITY AS e(item, o)
    ), written AS (
        INSERT INTO slots AS l (schedule_id, slot, outcome, run_id, recorded_at, covers)
        SELECT p_id, en.at_slot, en.slot_outcome, en.slot_run, p_now, en.slot_covers
        FROM entries AS en ORDER BY en.o
        ON CONFLICT (schedule_id, slot) DO UPDATE SET
            outcome = EXCLUDED.outcome, run_id = EXCLUDED.run_id,
            recorded_at = EXCLUDED.recorded_at, covers = EXCLUDED.covers
    )
    SELECT coalesce(array_agg(en.slot_run ORDER BY en.o) FILTER (WHERE en.slot_run IS NOT NULL),
                    '{}'),
           (array_agg(en.slot_outcome ORDER BY en.o DESC))[1]
    INTO v_ids, v_last
    FROM entries AS en;

    DELETE FROM slots AS l WHERE l.schedule_id = p_id AND l.slot < p_now - p_retention;

    UPDATE schedules AS s SET
        runs = s.runs + CASE WHEN v_paused THEN 0 ELSE p_fired END,
        version = s.version + 1,
        last_fire = coalesce(p_last, s.last_fire),
        last_outcome = CASE WHEN p_last IS NULL THEN s.last_outcome
                            ELSE coalesce(v_last, p_last_outcome) END,
        next_fire = p_next
    WHERE s.id = p_id;

    IF v_ready > 0 AND p_notify THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
    RETURN v_ids;
END
$$;
