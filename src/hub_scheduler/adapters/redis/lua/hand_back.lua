-- Return claimed, never-started runs to the front of their queue, in their original order.
-- ARGV: P, id, token pairs (oldest claim first). RPUSH puts a run at the front, so the
-- pairs are walked from the last: the oldest claim ends up first in line.
local returned = 0
for i = #ARGV - 1, 2, -2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local rk = K_RUN(id)
  local state = redis.call('HMGET', rk, 'st', 'tok', 'pri')
  if state[1] == 'active' and state[2] == token then
    redis.call('ZREM', K_ACTIVE, id)
    redis.call('HSET', rk, 'st', 'queued')
    redis.call('HDEL', rk, 'sta', 'wrk')
    redis.call('RPUSH', K_READY(state[3]), id)
    returned = returned + 1
  end
end
if returned > 0 then wake() end
return returned
