-- Declare jobs' flow control, as a worker does at start. ARGV: P, then per job: name,
-- max_running ('' for none), rate as "<count> <window ms> [payload field]" ('' for
-- none). Runs held for a max_running that rose or went away start: as many as there is room
-- for go to the front of their ready list, in their order.
for i = 2, #ARGV - 2, 3 do
  local job, limit, rate = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if rate == '' then redis.call('HDEL', K_RATES, job) else redis.call('HSET', K_RATES, job, rate) end
  local held = K_HELD(job)
  local room
  if limit == '' then
    redis.call('HDEL', K_LIMITS, job)
    redis.call('DEL', K_RUNNING(job))
    room = redis.call('LLEN', held)
  else
    redis.call('HSET', K_LIMITS, job, limit)
    has_room(job, tonumber(limit))  -- drops ids of runs no longer active
    room = tonumber(limit) - redis.call('SCARD', K_RUNNING(job))
  end
  local moving = {}
  while #moving < room do
    local id = redis.call('RPOP', held)
    if not id then break end
    local state = redis.call('HMGET', K_RUN(id), 'st', 'pri')
    if state[1] == 'queued' then moving[#moving + 1] = {id, state[2]} end
  end
  -- The oldest was taken first; pushing from the last leaves it first in line.
  for j = #moving, 1, -1 do redis.call('RPUSH', K_READY(moving[j][2]), moving[j][1]) end
  if #moving > 0 then wake() end
end
return 0
