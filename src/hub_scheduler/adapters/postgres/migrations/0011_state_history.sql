-- hub_scheduler on PostgreSQL, schema version 11: the runs that ended dead or cancelled,
-- newest first, so the history filtered by one of those states is an index range instead of
-- a scan of every run for the few among millions. Partial: only runs in those states have an
-- entry, and a run's state changes already touch the other partial indexes of runs.

CREATE INDEX runs_final_states ON runs (state, enqueued_at DESC, seq DESC)
    WHERE state IN ('dead', 'cancelled');
