-- Keep the trace context of a run's first attempt (field 'tca', JSON), for the spans of its
-- retries to link to. ARGV: P, id, token, context JSON. Nothing when the claim is stale or
-- the run is gone.
local rk = K_RUN(ARGV[2])
if redis.call('HGET', rk, 'tok') == ARGV[3] then
  redis.call('HSET', rk, 'tca', ARGV[4])
  return 1
end
return 0
