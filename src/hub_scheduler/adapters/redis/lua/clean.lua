-- Delete old history of one job. ARGV: P, job, older_than_ms, limit, allowed states
-- (comma-separated, with leading and trailing commas), the entry id of the job's history to
-- scan after ('-' from the start). Scans at most `limit` entries, oldest first. A run in the
-- dead-letter queue stays: dead letters leave it only when an admin retries or deletes them.
-- Returns {removed, scanned, the last entry id scanned or false}.
local job = ARGV[2]
local states = ARGV[5]
local index = K_JOB_HISTORY(job)
local entries = entries_before(index, ARGV[6], tonumber(ARGV[3]), tonumber(ARGV[4]))
local removed = 0
for _, entry in ipairs(entries) do
  local eid, id = entry[1], entry_run(entry)
  if not id then  -- its overall entry is gone (a hand-edited store): so is its run
    redis.call('XDEL', index, eid)
    removed = removed + 1
  else
    -- A record that cannot be read (pcall) is kept, and the clean goes on past it.
    local readable, got = pcall(run_get, id, 'st')
    local st = readable and got[1]
    local kept = (not readable) or redis.call('ZSCORE', K_DEAD, id)
    if (not kept) and ((not st) or string.find(states, ',' .. st .. ',', 1, true)) then
      redis.call('DEL', K_RUN(id))
      redis.call('HDEL', archive_key(id), id)
      redis.call('XDEL', index, eid)
      local overall = redis.call('XRANGE', K_HISTORY, eid, eid)[1]
      if overall and overall[2][2] == id then redis.call('XDEL', K_HISTORY, eid) end
      removed = removed + 1
    end
  end
end
local last = entries[#entries]
return {removed, #entries, last and last[1] or false}
