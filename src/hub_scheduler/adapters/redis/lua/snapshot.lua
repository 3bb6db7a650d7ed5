-- Queue health in one call. ARGV: P.
-- Returns {ready lengths per priority, delayed, active, dead, paused, paused jobs,
--          parked total, oldest waiting enqueue ms or false}.
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
local paused_jobs = redis.call('SMEMBERS', K_PAUSED_JOBS)
local parked = 0
for _, job in ipairs(paused_jobs) do
  local park = K_PARKED(job)
  parked = parked + redis.call('LLEN', park)
  local tail = redis.call('LINDEX', park, -1)
  if tail then
    local enq = tonumber(redis.call('HGET', K_RUN(tail), 'enq'))
    if enq and ((not oldest) or enq < oldest) then oldest = enq end
  end
end
return {depth, redis.call('ZCARD', K_DELAYED), redis.call('ZCARD', K_ACTIVE),
        redis.call('ZCARD', K_DEAD), redis.call('EXISTS', K_PAUSED), paused_jobs,
        parked, oldest and tostring(oldest) or false}
