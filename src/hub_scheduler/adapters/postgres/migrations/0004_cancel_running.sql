-- hub_scheduler on PostgreSQL, schema version 4: cancelling a run while it runs.
--
-- `cancel` of an active run sets cancel_requested_at (kept from the first request); its
-- worker sees it (`cancel_requests`), stops the handler and ends the run cancelled. Whatever
-- else ends that attempt first — a failure (retried or not), a stall, a hand-back at a
-- worker's stop — must end the run cancelled too, never retried or queued again: one trigger
-- does that for every function that moves a run out of 'active', so none of them changes.
-- Only a success recorded first ends it succeeded. The trigger's WHEN clause is evaluated
-- without calling the function, so runs without a request pay nothing.

ALTER TABLE runs ADD COLUMN cancel_requested_at timestamptz;

CREATE FUNCTION cancel_requested_run() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- The entry this change logged (a failure, or an interrupted attempt) says how the
    -- run's last attempt ended: cancelled; a stall stays a stall.
    IF NEW.attempts IS DISTINCT FROM OLD.attempts AND jsonb_array_length(NEW.attempts) > 0
       AND NEW.attempts -> -1 ->> 'o' IN ('failed', 'gave_up', 'interrupted') THEN
        NEW.attempts := jsonb_set(NEW.attempts #- '{-1,d}', '{-1,o}', '"cancelled"');
    END IF;
    NEW.state := 'cancelled';
    NEW.finished_at := coalesce(NEW.finished_at, NEW.ready_at, now());
    NEW.run_at := NULL;
    NEW.queue_pos := NULL;
    NEW.parked := false;
    NEW.lease_until := NULL;
    NEW.dead_at := NULL;
    NEW.dead_seq := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER runs_cancel_requested BEFORE UPDATE OF state ON runs
FOR EACH ROW
WHEN (OLD.state = 'active' AND NEW.cancel_requested_at IS NOT NULL
      AND NEW.state IN ('queued', 'retry_scheduled', 'dead'))
EXECUTE FUNCTION cancel_requested_run();
