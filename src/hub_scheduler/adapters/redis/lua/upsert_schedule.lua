-- Store a schedule definition. ARGV: P, id, definition JSON, next fire ms ('' = over),
-- declared ('1' from code, '0' at runtime), mode ('create' | 'update' | 'sync').
-- create: refuse an existing id; update: refuse a missing one; sync: write only if changed.
-- Runtime state (paused, runs, last fire) is kept; the version moves so an in-flight fire
-- computed from the old definition is refused. Returns 'exists' | 'missing' | 'same' | 'written'.
local id, definition, next_ms, declared, mode = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local def_key = P .. ':schedule:' .. id
local state_key = P .. ':schedule-state:' .. id
local current = redis.call('GET', def_key)
if mode == 'create' and current then return 'exists' end
if mode == 'update' and not current then return 'missing' end
if mode == 'sync' and current == definition and
   redis.call('HGET', state_key, 'declared') == declared then
  return 'same'
end
redis.call('SET', def_key, definition)
redis.call('SADD', P .. ':schedule-ids', id)
redis.call('HSETNX', state_key, 'runs', '0')
redis.call('HSETNX', state_key, 'paused', '0')
redis.call('HSET', state_key, 'next', next_ms, 'declared', declared)
redis.call('HINCRBY', state_key, 'ver', 1)
if next_ms == '' then
  redis.call('ZREM', P .. ':schedules-due', id)
else
  redis.call('ZADD', P .. ':schedules-due', tonumber(next_ms), id)
end
redis.call('PUBLISH', P .. ':schedules-changed', id)
return 'written'
