-- Resume one job: drop its pause flag and put its parked runs back at the front of their
-- queues, oldest first. ARGV: P, job.
local job = ARGV[2]
redis.call('SREM', K_PAUSED_JOBS, job)
local parked = K_PARKED(job)
local ids = redis.call('LRANGE', parked, 0, -1)
for _, id in ipairs(ids) do
  local pri = redis.call('HGET', K_RUN(id), 'pri')
  if pri then redis.call('RPUSH', K_READY(pri), id) end
end
redis.call('DEL', parked)
wake()
return #ids
