-- End an active run cancelled: its handler stopped for a cancel request.
-- ARGV: P, now_ms, id, token. Returns 1, or 0 for a stale token.
local now = tonumber(ARGV[2])
local id, token = ARGV[3], ARGV[4]
local rk = K_RUN(id)
local state = redis.call('HMGET', rk, 'st', 'tok', 'att', 'sta', 'wrk', 'job')
if state[1] ~= 'active' or state[2] ~= token then return 0 end
redis.call('ZREM', K_ACTIVE, id)
left_active(state[6], id)
local fields = {att = state[3], sta = state[4], wrk = state[5]}
log_attempt(rk, attempt_entry(fields, 'cancelled', now, '', nil), state[5] == 'reaper')
end_run(rk, id, 'cancelled', now)
return 1
