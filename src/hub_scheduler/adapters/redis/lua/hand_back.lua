-- Return claimed runs to the front of their queue, in their original order.
-- ARGV: P, now_ms, interrupted ('1' | '0'), then id, token pairs (oldest claim first). A run with a cancel request ends cancelled instead.
-- Runs that never started go back as they were. Interrupted runs were running when their
-- worker stopped: each counts a stall and logs an 'interrupted' attempt.
-- RPUSH puts a run at the front, so the pairs are walked from the last: the oldest claim
-- ends up first in line.
local now = tonumber(ARGV[2])
local interrupted = ARGV[3] == '1'
local returned = 0
for i = #ARGV - 1, 4, -2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local rk = K_RUN(id)
  local state = redis.call('HMGET', rk, 'st', 'tok', 'pri', 'cxl', 'job')
  if state[1] == 'active' and state[2] == token then left_active(state[5], id) end
  if state[1] == 'active' and state[2] == token and state[4] then
    if interrupted then
      log_attempt(rk, attempt_entry(attempt_fields(rk), 'cancelled', now, '', nil), false)
    end
    redis.call('ZREM', K_ACTIVE, id)
    end_run(rk, id, 'cancelled', now)
  elseif state[1] == 'active' and state[2] == token then
    if interrupted then
      log_attempt(rk, attempt_entry(attempt_fields(rk), 'interrupted', now, '', nil), false)
      redis.call('HINCRBY', rk, 'stl', 1)
      redis.call('HSET', rk, 'rdy', now)
    end
    redis.call('ZREM', K_ACTIVE, id)
    redis.call('HSET', rk, 'st', 'queued')
    redis.call('HDEL', rk, 'sta', 'wrk')
    redis.call('RPUSH', K_READY(state[3]), id)
    returned = returned + 1
  end
end
if returned > 0 then wake() end
return returned
