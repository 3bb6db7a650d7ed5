-- hub_scheduler on PostgreSQL, schema version 7: schedulers share the due schedules.
--
-- A scheduler claims a batch of due schedules for a short lease (claim_due): claimed_until is
-- when the lease ends, claimed_version the version the schedule had when claimed. A claim
-- holds only while both stand: firing (or any change) moves the version, so a fired schedule
-- is due again at its next fire without clearing anything, and a scheduler that died frees
-- its batch when the lease ends. A claim is a hint for sharing the work: exactly-once per
-- slot stays with fire()'s compare-and-advance on the version.

ALTER TABLE schedules
    ADD COLUMN claimed_until   timestamptz,
    ADD COLUMN claimed_version bigint;
