-- Recover runs whose lease expired. ARGV: P, now_ms, lease_ms, max_stalls, limit.
-- A run stalled at most max_stalls times goes back to the front of its queue; beyond that it
-- is held for the caller under a fresh lease (new token) so the caller can fail the attempt.
-- Returns {requeued ids, held runs (run_json each)}.
local now = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local max_stalls = tonumber(ARGV[4])
local active = P .. ':active'
local ids = redis.call('ZRANGEBYSCORE', active, '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
local requeued, held = {}, {}
-- Walk from the latest deadline so the earliest-claimed run ends up first in line.
for i = #ids, 1, -1 do
  local id = ids[i]
  local rk = run_key(id)
  local state = redis.call('HMGET', rk, 'st', 'pri')
  if state[1] ~= 'active' then
    redis.call('ZREM', active, id)
  else
    local stalls = redis.call('HINCRBY', rk, 'stl', 1)
    if stalls <= max_stalls then
      redis.call('ZREM', active, id)
      redis.call('HSET', rk, 'st', 'queued')
      redis.call('HDEL', rk, 'sta', 'wrk')
      redis.call('RPUSH', ready_key(state[2]), id)
      requeued[#requeued + 1] = id
    else
      redis.call('HINCRBY', rk, 'tok', 1)
      redis.call('HSET', rk, 'wrk', 'reaper')
      redis.call('ZADD', active, now + lease, id)
      held[#held + 1] = run_json(id)
    end
  end
end
if #requeued > 0 then wake() end
return {requeued, held}
