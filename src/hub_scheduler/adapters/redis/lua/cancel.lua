-- Cancel a run. ARGV: P, id, now_ms.
-- A waiting run (queued, delayed, retry pending) is cancelled at once. An active one gets a
-- cancel request ('cxl', kept from the first request): its worker stops the handler, and
-- whatever then ends the attempt ends the run cancelled (step, reap, hand_back,
-- settle_cancelled), unless a success is recorded first.
-- Returns the state it was in ('' when unknown).
local id = ARGV[2]
local rk = K_RUN(id)
local state = redis.call('HMGET', rk, 'st', 'pri', 'job')
if not state[1] then  -- archived (its final state), or unknown ('')
  return as_fields(archived_flat(id) or {}).st or ''
end
local st = state[1]
if st == 'queued' or st == 'delayed' or st == 'retry_scheduled' then
  redis.call('ZREM', K_DELAYED, id)
  redis.call('LREM', K_READY(state[2]), 1, id)
  redis.call('LREM', K_PARKED(state[3]), 1, id)
  redis.call('LREM', K_HELD(state[3]), 1, id)
  end_run(rk, id, 'cancelled', tonumber(ARGV[3]))
elseif st == 'active' then
  redis.call('HSETNX', rk, 'cxl', ARGV[3])
  wake()
end
return st
