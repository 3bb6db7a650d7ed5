-- Cancel a run that has not started. ARGV: P, id, now_ms, retention_ms.
-- Returns the state it was in ('' when unknown); only waiting states are cancelled.
local id = ARGV[2]
local rk = K_RUN(id)
local state = redis.call('HMGET', rk, 'st', 'pri', 'job')
if not state[1] then return '' end
local st = state[1]
if st == 'queued' or st == 'delayed' or st == 'retry_scheduled' then
  redis.call('ZREM', K_DELAYED, id)
  redis.call('LREM', K_READY(state[2]), 1, id)
  redis.call('LREM', K_PARKED(state[3]), 1, id)
  redis.call('HSET', rk, 'st', 'cancelled', 'fin', ARGV[3])
  redis.call('HDEL', rk, 'due')
  redis.call('PEXPIRE', rk, tonumber(ARGV[4]))
end
return st
