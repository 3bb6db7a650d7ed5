-- Resume one job: drop its pause flag and put its parked runs back at the front of their
-- queues, oldest first. ARGV: P, job.
local job = ARGV[2]
redis.call('SREM', P .. ':paused-jobs', job)
local parked = parked_key(job)
local ids = redis.call('LRANGE', parked, 0, -1)
for _, id in ipairs(ids) do
  local pri = redis.call('HGET', run_key(id), 'pri')
  if pri then redis.call('RPUSH', ready_key(pri), id) end
end
redis.call('DEL', parked)
wake()
return #ids
