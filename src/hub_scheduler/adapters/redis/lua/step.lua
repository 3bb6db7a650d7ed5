-- A worker's one round trip: settle finished attempts, promote due delayed runs, claim more.
-- ARGV: P, now_ms, lease_ms, worker, want, retention_ms, n_settled, then 6 per settled run:
-- id, token, kind ('s' succeeded | 'r' retry | 'd' dead), error_json, due_ms, next_attempt.
-- Returns {applied flags, claimed runs (run_json each), next delayed due ms or false}.
local now = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local worker = ARGV[4]
local want = tonumber(ARGV[5])
local retention = tonumber(ARGV[6])
local n_settled = tonumber(ARGV[7])

local applied = {}
local tally = {}
for i = 0, n_settled - 1 do
  local b = 8 + i * 6
  local id, token, kind = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local rk = K_RUN(id)
  local state = redis.call('HMGET', rk, 'st', 'tok', 'job', 'sta', 'att', 'wrk', 'cxl', 'wf')
  if state[1] == 'active' and state[2] == token then
    redis.call('ZREM', K_ACTIVE, id)
    left_active(state[3], id)
    local outcome = 'succeeded'
    if kind == 'r' then outcome = 'failed' elseif kind == 'd' then outcome = 'dead' end
    tally_attempt(tally, state[3], outcome, now, state[4])
    local fields = {att = state[5], sta = state[4], wrk = state[6]}
    -- The reaper settles stalls it logged already: it completes their entry.
    local amend = state[6] == 'reaper'
    if kind ~= 's' and state[7] then
      -- Cancelled while it ran, and it failed meanwhile: cancelled, never retried.
      log_attempt(rk, attempt_entry(fields, 'cancelled', now, ARGV[b + 3], nil), amend)
      end_run(rk, id, 'cancelled', now, ARGV[b + 3], state[8] ~= false)
    elseif kind == 's' then
      -- A run that succeeded at its only attempt keeps no log: codec.py reads that attempt off
      -- att, sta, fin and wrk. (The log's ~90 bytes would nearly double its archived record:
      -- most runs are just that.)
      if amend or redis.call('HEXISTS', rk, 'atl') == 1 then
        log_attempt(rk, attempt_entry(fields, 'succeeded', now, '', nil), amend)
      end
      end_run(rk, id, 'succeeded', now, nil, state[8] ~= false)
    elseif kind == 'r' then
      local due = tonumber(ARGV[b + 4])
      log_attempt(rk, attempt_entry(fields, 'failed', now, ARGV[b + 3], due - now), amend)
      redis.call('HSET', rk, 'st', 'retry_scheduled', 'fin', now, 'err', ARGV[b + 3],
                 'due', ARGV[b + 4], 'att', ARGV[b + 5])
      redis.call('ZADD', K_DELAYED, due, id)
    else
      log_attempt(rk, attempt_entry(fields, 'gave_up', now, ARGV[b + 3], nil), amend)
      redis.call('ZADD', K_DEAD, now, id)
      end_run(rk, id, 'dead', now, ARGV[b + 3], state[8] ~= false)
    end
    applied[#applied + 1] = 1
  else
    applied[#applied + 1] = 0
  end
end

local due_ids = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due_ids) do
  redis.call('ZREM', K_DELAYED, id)
  local rk = K_RUN(id)
  local state = redis.call('HMGET', rk, 'st', 'pri', 'due')
  if state[1] == 'delayed' or state[1] == 'retry_scheduled' then
    redis.call('HSET', rk, 'st', 'queued', 'rdy', state[3] or now)
    redis.call('HDEL', rk, 'due')
    redis.call('LPUSH', K_READY(state[2]), id)
  end
end

-- For a job with limits: whether run `id` (record `rk`) may start now. At its max_running
-- it is held aside (K_HELD); over its rate it is delayed until the window has room. Else it
-- counts.
local function within_limits(job, id, rk)
  local limit = redis.call('HGET', K_LIMITS, job)
  if limit and not has_room(job, tonumber(limit)) then
    redis.call('LPUSH', K_HELD(job), id)
    return false
  end
  local spec = redis.call('HGET', K_RATES, job)
  if spec then
    local slot = rate_slot(job, id, rk, spec, now)
    if slot then
      redis.call('HSET', rk, 'st', 'delayed', 'due', slot, 'rdy', slot)
      redis.call('ZADD', K_DELAYED, slot, id)
      return false
    end
  end
  if limit then redis.call('SADD', K_RUNNING(job), id) end
  return true
end

local claimed = {}
if want > 0 and redis.call('EXISTS', K_PAUSED) == 0 then
  local any_paused = redis.call('SCARD', K_PAUSED_JOBS) > 0
  local any_limited = redis.call('HLEN', K_LIMITS) > 0 or redis.call('HLEN', K_RATES) > 0
  for _, pri in ipairs(PRIORITIES) do
    local ready = K_READY(pri)
    while #claimed < want do
      local id = redis.call('RPOP', ready)
      if not id then break end
      local rk = K_RUN(id)
      local state = redis.call('HMGET', rk, 'st', 'job', 'rdy', 'enq', 'tok', 'fin')
      if state[1] ~= 'queued' then
        -- cancelled (or its record expired) while waiting: nothing to run
      elseif any_paused and redis.call('SISMEMBER', K_PAUSED_JOBS, state[2]) == 1 then
        redis.call('LPUSH', K_PARKED(state[2]), id)
      elseif any_limited and not within_limits(state[2], id, rk) then
        -- held for a slot of max_running, or delayed to its rate limit's next free slot
      else
        -- One HSET: the next fencing token and the start; a failed attempt's 'fin' goes.
        local token = string.format('%d', (tonumber(state[5]) or 0) + 1)
        redis.call('HSET', rk, 'tok', token, 'st', 'active', 'sta', now, 'wrk', worker)
        if state[6] then redis.call('HDEL', rk, 'fin') end
        redis.call('ZADD', K_ACTIVE, now + lease, id)
        tally_wait(tally, state[2], now, state[3] or state[4])
        claimed[#claimed + 1] = run_json(id)
      end
    end
    if #claimed >= want then break end
  end
end

flush_tally(tally, now, retention)

local next_due = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
return {applied, claimed, next_due[2] or false}
