-- Read schedules. ARGV: P, then schedule ids.
-- Returns one JSON text (one reply to parse, not two per schedule): [[id, definition,
-- [state field, value, ...]], ...] for the ids that exist, in the order asked.
local found = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local definition = redis.call('GET', K_SCHEDULE(id))
  if definition then
    found[#found + 1] = {id, definition, redis.call('HGETALL', K_SCHEDULE_STATE(id))}
  end
end
if #found == 0 then return '[]' end
return cjson.encode(found)
