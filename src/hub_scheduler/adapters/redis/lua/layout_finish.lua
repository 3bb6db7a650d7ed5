-- End a move (see layout_begin.lua): append what each stream received meanwhile to its
-- moving copy, put the copy in its place, drop the layout 1 index, record the layout.
-- ARGV: P, owner, target layout. Returns 1, or -1 when the lock is no longer this owner's.
if redis.call('GET', K_LAYOUT_LOCK) ~= ARGV[2] then return -1 end
-- Append `live`'s entries to `moving` and put it in `live`'s place (with `always`, also when
-- there is no moving copy: `live` is rewritten). Run ids are written in full: the copy may
-- not keep an entry's id.
local function settle(moving, live, always)
  if not always and redis.call('EXISTS', moving) == 0 then return end
  for _, entry in ipairs(redis.call('XRANGE', live, '-', '+')) do
    local id = entry_run(entry)
    if id then index_at(moving, entry[1], id, tonumber(string.match(entry[1], '^%d+'))) end
  end
  if redis.call('EXISTS', moving) == 1 then redis.call('RENAME', moving, live) end
end
-- A job's entry names its run only through the overall entry of the same id (common.lua
-- index_run_in), and merging the overall stream may give a live entry another id: so the job
-- streams go first, read against the overall stream as it still is, every one of them.
for _, job in ipairs(redis.call('SMEMBERS', K_JOBS)) do
  settle(K_MOVING_JOB_HISTORY(job), K_JOB_HISTORY(job), true)
  redis.call('UNLINK', K_JOB_RUNS(job))
end
settle(K_MOVING_HISTORY, K_HISTORY)
for _, state in ipairs({'dead', 'cancelled'}) do
  settle(K_MOVING_STATE_HISTORY(state), K_STATE_HISTORY(state))
end
redis.call('UNLINK', K_RUNS)
redis.call('SET', K_LAYOUT, ARGV[3])
redis.call('DEL', K_LAYOUT_LOCK)
return 1
