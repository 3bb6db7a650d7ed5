-- Store schedule definitions. ARGV: P, mode ('create' | 'update' | 'sync'), then per
-- schedule four arguments: id, definition JSON, next fire ms ('' = over), declared ('1' from
-- code, '0' at runtime).
-- create: refuse an existing id; update: refuse a missing one; sync: write only if changed.
-- Runtime state (paused, runs, last fire) is kept; the version moves so an in-flight fire
-- computed from the old definition is refused. Returns per schedule 'exists' | 'missing' |
-- 'same' | 'written'; one change notice is published when any was written.
-- A write also keeps the read indexes (K_SCHEDULE_ORDER, K_SCHEDULE_JOBS; see
-- page_schedules.lua), the job taken from the definition's "job" field.
local mode = ARGV[2]
-- The job a definition is of: its first "job" key, the top-level one (it comes before the
-- trigger and the payload, and a quote inside a JSON string is escaped).
local function schedule_job(definition)
  return string.match(definition, '"job":"([^"]*)"') or ''
end
local answers = {}
local written = nil
for i = 3, #ARGV, 4 do
  local id, definition, next_ms, declared = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local def_key = K_SCHEDULE(id)
  local state_key = K_SCHEDULE_STATE(id)
  local current = redis.call('GET', def_key)
  local answer = 'written'
  if mode == 'create' and current then
    answer = 'exists'
  elseif mode == 'update' and not current then
    answer = 'missing'
  elseif mode == 'sync' and current == definition and
         redis.call('HGET', state_key, 'declared') == declared then
    answer = 'same'
  else
    if current then redis.call('ZREM', K_SCHEDULE_JOBS, schedule_job(current) .. ' ' .. id) end
    redis.call('ZADD', K_SCHEDULE_ORDER, 0, id)
    redis.call('ZADD', K_SCHEDULE_JOBS, 0, schedule_job(definition) .. ' ' .. id)
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
    written = written or id
  end
  answers[#answers + 1] = answer
end
if written then redis.call(PUBLISH, K_SCHEDULES_CHANGED, written) end
return answers
