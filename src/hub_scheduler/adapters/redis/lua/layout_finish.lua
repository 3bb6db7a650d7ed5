-- End a move (see layout_begin.lua): append what each stream received meanwhile to its
-- moving copy, put the copy in its place, drop the layout 1 index, record the layout.
-- ARGV: P, owner, target layout. Returns 1, or -1 when the lock is no longer this owner's.
if redis.call('GET', K_LAYOUT_LOCK) ~= ARGV[2] then return -1 end
local function settle(moving, live)
  if redis.call('EXISTS', moving) == 0 then return end
  for _, entry in ipairs(redis.call('XRANGE', live, '-', '+')) do
    local id = entry_run(entry)  -- in full: the copy may not keep the entry id
    if id then index_at(moving, entry[1], id, tonumber(string.match(entry[1], '^%d+'))) end
  end
  redis.call('RENAME', moving, live)
end
settle(K_MOVING_HISTORY, K_HISTORY)
for _, state in ipairs({'dead', 'cancelled'}) do
  settle(K_MOVING_STATE_HISTORY(state), K_STATE_HISTORY(state))
end
for _, job in ipairs(redis.call('SMEMBERS', K_JOBS)) do
  settle(K_MOVING_JOB_HISTORY(job), K_JOB_HISTORY(job))
  redis.call('UNLINK', K_JOB_RUNS(job))
end
redis.call('UNLINK', K_RUNS)
redis.call('SET', K_LAYOUT, ARGV[3])
redis.call('DEL', K_LAYOUT_LOCK)
return 1
