-- hub_scheduler on PostgreSQL, schema version 6: unique jobs.
--
-- A unique job's enqueue carries its unique key as the idempotency key, with "unique":
-- "keep" or "replace". The key is held while the run holding it is unfinished (waiting or
-- running), not for a window: a new enqueue meanwhile answers the holder (keep), or cancels a
-- still-waiting holder and is enqueued itself (replace; a running holder is kept). The key's
-- row is locked while this is decided, so concurrent enqueues of one key end with one holder.

CREATE OR REPLACE FUNCTION enqueue(p_now timestamptz, p_runs jsonb, p_notify boolean,
                                   p_channel text)
RETURNS TABLE (repeat_index bigint, first_run_id text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_item record;
    v_first text;
    v_state text;
    v_skip bigint[] := '{}';
    -- Runs of this batch that took a unique key (inserted after the loop).
    v_taking text[] := '{}';
BEGIN
    FOR v_item IN
        SELECT e.o, e.item->>'id' AS new_id, e.item->>'idempotency_key' AS idem,
               (e.item->>'window_us')::bigint AS window_us, e.item->>'unique' AS uniq
        FROM jsonb_array_elements(p_runs) WITH ORDINALITY AS e(item, o)
        WHERE e.item->>'idempotency_key' IS NOT NULL
        ORDER BY e.o
    LOOP
        IF v_item.uniq IS NULL THEN
            INSERT INTO idempotency AS i (idem_key, run_id, expires_at)
            VALUES (v_item.idem, v_item.new_id,
                    p_now + v_item.window_us * interval '1 microsecond')
            ON CONFLICT (idem_key) DO UPDATE
                SET run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at
                WHERE i.expires_at <= p_now;
            IF NOT FOUND THEN
                SELECT i.run_id INTO v_first FROM idempotency AS i
                WHERE i.idem_key = v_item.idem;
                repeat_index := v_item.o - 1;
                first_run_id := v_first;
                RETURN NEXT;
                v_skip := v_skip || v_item.o;
            END IF;
            CONTINUE;
        END IF;
        -- A unique key: take its row (inserting it first if new), then look at its holder.
        INSERT INTO idempotency AS i (idem_key, run_id, expires_at)
        VALUES (v_item.idem, v_item.new_id, p_now + v_item.window_us * interval '1 microsecond')
        ON CONFLICT (idem_key) DO NOTHING;
        IF FOUND THEN
            v_taking := v_taking || v_item.new_id;
            CONTINUE;  -- a new key: this run holds it
        END IF;
        SELECT i.run_id INTO v_first FROM idempotency AS i
        WHERE i.idem_key = v_item.idem FOR UPDATE;
        IF v_first = ANY (v_taking) THEN
            v_state := 'queued';  -- taken earlier in this batch: not inserted yet
        ELSE
            SELECT r.state INTO v_state FROM runs AS r WHERE r.id = v_first FOR UPDATE;
        END IF;
        IF v_state IN ('queued', 'delayed', 'retry_scheduled', 'active')
           AND NOT (v_item.uniq = 'replace' AND v_state <> 'active'
                    AND NOT v_first = ANY (v_taking)) THEN
            repeat_index := v_item.o - 1;
            first_run_id := v_first;
            RETURN NEXT;
            v_skip := v_skip || v_item.o;
            CONTINUE;
        END IF;
        IF v_state IN ('queued', 'delayed', 'retry_scheduled') THEN
            UPDATE runs SET state = 'cancelled', finished_at = p_now, run_at = NULL,
                            queue_pos = NULL, parked = false, held = false
            WHERE id = v_first;
        END IF;
        UPDATE idempotency SET run_id = v_item.new_id,
            expires_at = p_now + v_item.window_us * interval '1 microsecond'
        WHERE idem_key = v_item.idem;
        v_taking := v_taking || v_item.new_id;
    END LOOP;
    IF insert_runs(p_now, p_runs, v_skip) > 0 AND p_notify THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
END
$$;
