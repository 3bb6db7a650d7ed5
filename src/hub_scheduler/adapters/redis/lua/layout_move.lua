-- Copy a batch of the layout 1 index to the moving streams (see layout_begin.lua).
-- ARGV: P, owner, lock ms, offset, count. Returns the entries read, or -1 when the lock is
-- no longer this owner's (its move stops).
if redis.call('GET', K_LAYOUT_LOCK) ~= ARGV[2] then return -1 end
redis.call('PEXPIRE', K_LAYOUT_LOCK, tonumber(ARGV[3]))
local offset = tonumber(ARGV[4])
local chunk = redis.call('ZRANGE', K_RUNS, offset, offset + tonumber(ARGV[5]) - 1, 'WITHSCORES')
local ended = {}
for i = 1, #chunk, 2 do
  local id = chunk[i]
  local run = run_get(id, 'job', 'st', 'fin')
  if run[1] then  -- else the record is gone: so is its entry
    index_run_in(K_MOVING_HISTORY, K_MOVING_JOB_HISTORY(run[1]), id, tonumber(chunk[i + 1]))
    if (run[2] == 'dead' or run[2] == 'cancelled') and run[3] then
      ended[#ended + 1] = {tonumber(run[3]), id, run[2]}
    end
  end
end
table.sort(ended, function(a, b) return a[1] < b[1] end)
for _, run in ipairs(ended) do index_add(K_MOVING_STATE_HISTORY(run[3]), run[1], run[2]) end
return #chunk / 2
