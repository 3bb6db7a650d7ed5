-- hub_scheduler on PostgreSQL, schema version 10: indexes for the admin reads that page.
--
-- schedules_order: schedules in byte order of their id (COLLATE "C", the order every
-- backend pages them in, whatever the database's collation), so a page after a cursor is an
-- index range. schedules_job: one job's schedules in that order, so the schedules of a page
-- of jobs are index ranges too. (A job's newest run already has runs_job_history, its
-- counters the job_stats primary key.)

CREATE INDEX schedules_order ON schedules (id COLLATE "C");
CREATE INDEX schedules_job ON schedules (job, id COLLATE "C");
