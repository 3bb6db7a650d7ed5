-- Read schedules by their indexes. ARGV: P, mode, then
--   'after': cursor id ('' = from the first), limit: up to limit schedules ordered by id
--            after the cursor; returns {JSON, more (1 when more follow)};
--   'jobs':  job names: every schedule of those jobs, ordered by job then id; returns
--            {JSON, 0}.
-- JSON is [[id, definition, [state field, value, ...]], ...] as load_schedules.lua answers.
-- The indexes (K_SCHEDULE_ORDER: ids at score 0; K_SCHEDULE_JOBS: "<job> <id>" at score 0)
-- are kept by upsert_schedule.lua and schedule_admin.lua. A store written before they
-- existed, or by an older version meanwhile, has sizes that differ from K_SCHEDULE_IDS:
-- then both are rebuilt here, once (O(schedules)), and read in O(page) from then on.
local mode = ARGV[2]
local count = redis.call('SCARD', K_SCHEDULE_IDS)
if redis.call('ZCARD', K_SCHEDULE_ORDER) ~= count or
   redis.call('ZCARD', K_SCHEDULE_JOBS) ~= count then
  redis.call('DEL', K_SCHEDULE_ORDER, K_SCHEDULE_JOBS)
  for _, id in ipairs(redis.call('SMEMBERS', K_SCHEDULE_IDS)) do
    local definition = redis.call('GET', K_SCHEDULE(id))
    local job = definition and string.match(definition, '"job":"([^"]*)"') or ''
    redis.call('ZADD', K_SCHEDULE_ORDER, 0, id)
    redis.call('ZADD', K_SCHEDULE_JOBS, 0, job .. ' ' .. id)
  end
end
local found = {}
local function load(id)
  local definition = redis.call('GET', K_SCHEDULE(id))
  if definition then
    found[#found + 1] = {id, definition, redis.call('HGETALL', K_SCHEDULE_STATE(id))}
  end
end
local more = 0
if mode == 'after' then
  local cursor, limit = ARGV[3], tonumber(ARGV[4])
  local low = cursor == '' and '-' or '(' .. cursor
  local ids = redis.call('ZRANGEBYLEX', K_SCHEDULE_ORDER, low, '+', 'LIMIT', 0, limit + 1)
  if #ids > limit then more = 1 end
  for i = 1, math.min(#ids, limit) do load(ids[i]) end
else
  for i = 3, #ARGV do
    local job = ARGV[i]
    -- Job names hold no space, and every character of one sorts above it: "<job> " up to
    -- "<job>!" is exactly this job's members.
    local members = redis.call('ZRANGEBYLEX', K_SCHEDULE_JOBS, '[' .. job .. ' ', '(' .. job .. '!')
    for _, member in ipairs(members) do load(string.sub(member, #job + 2)) end
  end
end
if #found == 0 then return {'[]', more} end
return {cjson.encode(found), more}
