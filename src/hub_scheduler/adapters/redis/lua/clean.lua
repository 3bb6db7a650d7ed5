-- Delete old history of one job. ARGV: P, job, older_than_ms, limit, allowed states
-- (comma-separated, with leading and trailing commas). Scans at most `limit` index entries,
-- oldest first. A run in the dead-letter queue stays: dead letters leave it only when an
-- admin retries or deletes them. Returns {removed, scanned, score of the last entry scanned
-- or false}.
local job = ARGV[2]
local states = ARGV[5]
local index = K_JOB_RUNS(job)
local entries = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. ARGV[3], 'WITHSCORES',
                           'LIMIT', 0, tonumber(ARGV[4]))
local removed = 0
for i = 1, #entries, 2 do
  local id = entries[i]
  local st = redis.call('HGET', K_RUN(id), 'st')
  local kept = redis.call('ZSCORE', K_DEAD, id)
  if (not kept) and ((not st) or string.find(states, ',' .. st .. ',', 1, true)) then
    redis.call('DEL', K_RUN(id))
    redis.call('ZREM', index, id)
    redis.call('ZREM', K_RUNS, id)
    removed = removed + 1
  end
end
return {removed, #entries / 2, entries[#entries] or false}
