-- Pause, resume or delete a schedule. ARGV: P, id, action ('pause' | 'resume' | 'delete').
-- Returns 0 when there is no such schedule, else 1. The ledger outlives a delete.
local id, action = ARGV[2], ARGV[3]
local def_key = K_SCHEDULE(id)
local state_key = K_SCHEDULE_STATE(id)
if redis.call('EXISTS', def_key) == 0 then return 0 end
if action == 'delete' then
  local job = string.match(redis.call('GET', def_key), '"job":"([^"]*)"') or ''
  redis.call('ZREM', K_SCHEDULE_ORDER, id)
  redis.call('ZREM', K_SCHEDULE_JOBS, job .. ' ' .. id)
  redis.call('DEL', def_key, state_key)
  redis.call('SREM', K_SCHEDULE_IDS, id)
  redis.call('ZREM', K_SCHEDULES_DUE, id)
else
  redis.call('HSET', state_key, 'paused', action == 'pause' and '1' or '0')
  redis.call('HINCRBY', state_key, 'ver', 1)
end
redis.call(PUBLISH, K_SCHEDULES_CHANGED, id)
return 1
