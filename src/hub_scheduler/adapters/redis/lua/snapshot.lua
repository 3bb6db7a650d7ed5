-- Queue health in one call. ARGV: P.
-- Returns {ready lengths per priority, delayed, active, dead, paused, paused jobs,
--          parked total, oldest waiting enqueue ms or false,
--          active per worker as a flat list of worker, count, {succeeded, failed, dead}}.
local depth = {}
local oldest = false
for i, pri in ipairs(PRIORITIES) do
  local ready = K_READY(pri)
  depth[i] = redis.call('LLEN', ready)
  local tail = redis.call('LINDEX', ready, -1)
  if tail then
    local enq = tonumber(redis.call('HGET', K_RUN(tail), 'enq'))
    if enq and ((not oldest) or enq < oldest) then oldest = enq end
  end
end
-- Runs waiting aside: parked by a job's pause, or held at its max_running. Counts them and
-- notes the oldest (each list's oldest is at its tail).
local parked = 0
local function aside(list)
  parked = parked + redis.call('LLEN', list)
  local tail = redis.call('LINDEX', list, -1)
  if tail then
    local enq = tonumber(redis.call('HGET', K_RUN(tail), 'enq'))
    if enq and ((not oldest) or enq < oldest) then oldest = enq end
  end
end
local paused_jobs = redis.call('SMEMBERS', K_PAUSED_JOBS)
for _, job in ipairs(paused_jobs) do aside(K_PARKED(job)) end
for _, job in ipairs(redis.call('HKEYS', K_LIMITS)) do aside(K_HELD(job)) end
-- Active runs per worker, from the leases (as current as the queue; heartbeats lag).
local per_worker = {}
for _, id in ipairs(redis.call('ZRANGE', K_ACTIVE, 0, -1)) do
  local wrk = redis.call('HGET', K_RUN(id), 'wrk')
  if wrk then per_worker[wrk] = (per_worker[wrk] or 0) + 1 end
end
local by_worker = {}
for wrk, n in pairs(per_worker) do
  by_worker[#by_worker + 1] = wrk; by_worker[#by_worker + 1] = n
end
return {depth, redis.call('ZCARD', K_DELAYED), redis.call('ZCARD', K_ACTIVE),
        redis.call('ZCARD', K_DEAD), redis.call('EXISTS', K_PAUSED), paused_jobs,
        parked, oldest and tostring(oldest) or false, by_worker,
        redis.call('HMGET', K_STATS_QUEUE, 'succeeded', 'failed', 'dead')}
