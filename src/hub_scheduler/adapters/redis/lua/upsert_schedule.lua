-- Store a schedule definition. ARGV: P, id, definition JSON, next fire ms ('' = over),
-- declared ('1' from code, '0' at runtime), mode ('create' | 'update' | 'sync').
-- create: refuse an existing id; update: refuse a missing one; sync: write only if changed.
-- Runtime state (paused, runs, last fire) is kept; the version moves so an in-flight fire
-- computed from the old definition is refused. Returns 'exists' | 'missing' | 'same' | 'written'.
local id, definition, next_ms, declared, mode = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local def_key = K_SCHEDULE(id)
local state_key = K_SCHEDULE_STATE(id)
local current = redis.call('GET', def_key)
if mode == 'create' and current then return 'exists' end
if mode == 'update' and not current then return 'missing' end
if mode == 'sync' and current == definition and
   redis.call('HGET', state_key, 'declared') == declared then
  return 'same'
end
redis.call('SET', def_key, definition)
redis.call('SADD', K_SCHEDULE_IDS, id)
redis.call('HSETNX', state_key, 'runs', '0')
redis.call('HSETNX', state_key, 'paused', '0')
redis.call('HSET', state_key, 'next', next_ms, 'declared', declared)
redis.call('HINCRBY', state_key, 'ver', 1)
if next_ms == '' then
  redis.call('ZREM', K_SCHEDULES_DUE, id)
else
  redis.call('ZADD', K_SCHEDULES_DUE, tonumber(next_ms), id)
end
redis.call(PUBLISH, K_SCHEDULES_CHANGED, id)
return 'written'
