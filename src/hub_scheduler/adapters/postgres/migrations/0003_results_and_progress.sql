-- hub_scheduler on PostgreSQL, schema version 3: what runs returned, and how far running
-- ones got (taskiq's results and progress, and ctx.progress()).
--
-- One row per run that stored either. result: {"v": 1, "value": <any JSON>}, at most the
-- payload limit encoded (checked before writing); progress: {"v": 1, "at": ISO 8601,
-- "fraction": 0..1 or null, "message": text, "state": text, "meta": <any JSON>}. Rows go
-- with their run when history is cleaned (ON DELETE CASCADE), so they share its retention.

CREATE TABLE run_results (
    run_id       text PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    result       jsonb,
    stored_at    timestamptz,
    progress     jsonb
);
