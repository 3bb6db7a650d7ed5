-- Recover runs whose lease expired. ARGV: P, now_ms, lease_ms, max_stalls, limit. A run with
-- a cancel request ends cancelled instead.
-- A run stalled at most max_stalls times goes back to the front of its queue; beyond that it
-- is held for the caller under a fresh lease (new token) so the caller can fail the attempt.
-- Each stall is logged as an attempt (a held one's entry is completed when it is settled).
-- Returns {requeued ids, held runs (run_json each)}.
local STALLED_ERROR = cjson.encode({type = 'StalledError',
  message = 'its worker stopped renewing the lease', traceback = ''})
local now = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local max_stalls = tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', K_ACTIVE, '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
-- Runs claimed in one batch share a deadline; order them by enqueue time so that walking
-- from the newest and pushing each to the front leaves the oldest first in line.
local enqueued = {}
for _, id in ipairs(ids) do
  enqueued[id] = tonumber(redis.call('HGET', K_RUN(id), 'enq') or '0')
end
table.sort(ids, function(a, b)
  if enqueued[a] ~= enqueued[b] then return enqueued[a] < enqueued[b] end
  return a < b
end)
local requeued, held = {}, {}
for i = #ids, 1, -1 do
  local id = ids[i]
  local rk = K_RUN(id)
  local state = redis.call('HMGET', rk, 'st', 'pri', 'cxl', 'job')
  if state[1] ~= 'active' then
    redis.call('ZREM', K_ACTIVE, id)
  else
    local stalls = redis.call('HINCRBY', rk, 'stl', 1)
    log_attempt(rk, attempt_entry(attempt_fields(rk), 'stalled', now, STALLED_ERROR, nil), false)
    if state[3] or stalls <= max_stalls then left_active(state[4], id) end
    if state[3] then
      redis.call('ZREM', K_ACTIVE, id)
      end_run(rk, id, 'cancelled', now)
    elseif stalls <= max_stalls then
      redis.call('ZREM', K_ACTIVE, id)
      redis.call('HSET', rk, 'st', 'queued', 'rdy', now)
      redis.call('HDEL', rk, 'sta', 'wrk')
      redis.call('RPUSH', K_READY(state[2]), id)
      requeued[#requeued + 1] = id
    else
      redis.call('HINCRBY', rk, 'tok', 1)
      redis.call('HSET', rk, 'wrk', 'reaper')
      redis.call('ZADD', K_ACTIVE, now + lease, id)
      held[#held + 1] = run_json(id)
    end
  end
end
if #requeued > 0 then wake() end
return {requeued, held}
