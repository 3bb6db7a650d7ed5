-- A page of history stream ARGV[2] (keys.py history, job_history or state_history), newest
-- entry first: at most ARGV[4] entries from ARGV[3] ('+', or '(<entry id>' to go on after one).
-- Returns {runs, cursor}: runs as {run id, record flat (run_flat)} for those that still exist,
-- the cursor the id of the last entry read when more may follow, else false.
local limit = tonumber(ARGV[4])
local rows = redis.call('XREVRANGE', ARGV[2], ARGV[3], '-', 'COUNT', limit + 1)
local runs = {}
for i = 1, math.min(#rows, limit) do
  local id = entry_run(rows[i])
  if id then
    local flat = run_flat(id)
    if #flat > 0 then runs[#runs + 1] = {id, flat} end
  end
end
return {runs, #rows > limit and rows[limit][1] or false}
