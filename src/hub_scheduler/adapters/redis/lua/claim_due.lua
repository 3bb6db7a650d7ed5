-- Claim the due schedules: the earliest ones whose next fire is at or before now, moved in
-- the due index to now + lease so that no other scheduler is handed them until they are
-- fired (which moves them to their next fire) or the lease ends (a scheduler that died).
-- ARGV: P, now_ms, lease end ms, limit.
-- Returns one JSON text (one reply to parse, not thousands): [[id, definition, [state
-- field, value, ...]], ...] per claimed schedule, earliest first.
local due = redis.call('ZRANGEBYSCORE', K_SCHEDULES_DUE, '-inf', ARGV[2], 'LIMIT', 0,
                       tonumber(ARGV[4]))
local claimed = {}
for _, id in ipairs(due) do
  local definition = redis.call('GET', K_SCHEDULE(id))
  if definition and redis.call('HGET', K_SCHEDULE_STATE(id), 'next') ~= '' then
    redis.call('ZADD', K_SCHEDULES_DUE, tonumber(ARGV[3]), id)
    claimed[#claimed + 1] = {id, definition, redis.call('HGETALL', K_SCHEDULE_STATE(id))}
  else
    redis.call('ZREM', K_SCHEDULES_DUE, id)  -- a leftover of a deleted or ended schedule
  end
end
if #claimed == 0 then return '[]' end
return cjson.encode(claimed)
