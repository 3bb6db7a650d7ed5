-- Extend leases. ARGV: P, now_ms, lease_ms, worker, then id, token pairs.
-- Returns the ids this worker no longer holds.
local deadline = tonumber(ARGV[2]) + tonumber(ARGV[3])
local worker = ARGV[4]
local lost = {}
for i = 5, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local state = redis.call('HMGET', K_RUN(id), 'st', 'tok', 'wrk')
  if state[1] == 'active' and state[2] == token and state[3] == worker then
    redis.call('ZADD', K_ACTIVE, 'XX', deadline, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
