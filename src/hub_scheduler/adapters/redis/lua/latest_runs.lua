-- The newest run of each job. ARGV: P, then job names.
-- Returns per job, in order, {run id, [field, value, ...]} or {'', {}} when it has none.
local answers = {}
for i = 2, #ARGV do
  local newest = redis.call('XREVRANGE', K_JOB_HISTORY(ARGV[i]), '+', '-', 'COUNT', 1)[1]
  local fields = {}
  local id = newest and entry_run(newest)
  if id then fields = run_flat(id) end
  if #fields == 0 then id = '' end
  answers[#answers + 1] = {id, fields}
end
return answers
