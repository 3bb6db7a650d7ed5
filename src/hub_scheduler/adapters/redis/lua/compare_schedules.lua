-- Which declared schedules differ from the stored ones. ARGV: P, then per schedule three
-- arguments: id, definition JSON, declared ('1' | '0').
-- Returns one JSON text (one reply to parse, not one per schedule): a list with one entry
-- per schedule, in order: '' where the stored definition and flag are the same (a sync leaves
-- it alone), 'new' where none is stored, else its run count so far, from which the caller
-- computes its next fire.
local answers = {}
for i = 2, #ARGV, 3 do
  local id, definition, declared = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local state_key = K_SCHEDULE_STATE(id)
  local current = redis.call('GET', K_SCHEDULE(id))
  if not current then
    answers[#answers + 1] = 'new'
  elseif current == definition and redis.call('HGET', state_key, 'declared') == declared then
    answers[#answers + 1] = ''
  else
    answers[#answers + 1] = redis.call('HGET', state_key, 'runs') or '0'
  end
end
if #answers == 0 then return '[]' end
return cjson.encode(answers)
