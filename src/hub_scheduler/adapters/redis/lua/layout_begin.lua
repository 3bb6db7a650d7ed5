-- Data layout 1 indexed the history in sorted sets (K_RUNS, and K_JOB_RUNS per job); layout
-- 2 in streams (K_HISTORY, K_JOB_HISTORY, K_STATE_HISTORY) at a
-- quarter of the memory. The move: layout_begin, then layout_move for each batch of the old
-- index, then layout_finish. Meanwhile new runs go to the streams as usual, and the old
-- index is copied to K_MOVING_* streams, which layout_finish puts in their place with the
-- new entries appended (a moving stream's entries are all older). A move that stops (its
-- process died) starts over once its lock has expired.
-- ARGV: P, target layout, owner, lock ms. Returns {'ready'} when there is nothing to move,
-- {'newer', layout} when a newer version wrote it, {'busy'} while another process moves it,
-- else {'move', runs in the old index}.
local found = redis.call('GET', K_LAYOUT)
if found then
  if tonumber(found) > tonumber(ARGV[2]) then return {'newer', tonumber(found)} end
  -- From layout 2 on, what a newer layout adds reads the older data as it is.
  if tonumber(found) < tonumber(ARGV[2]) then redis.call('SET', K_LAYOUT, ARGV[2]) end
  return {'ready'}
end
if redis.call('EXISTS', K_RUNS) == 0 then
  redis.call('SET', K_LAYOUT, ARGV[2])
  return {'ready'}
end
if not redis.call('SET', K_LAYOUT_LOCK, ARGV[3], 'NX', 'PX', tonumber(ARGV[4])) then
  return {'busy'}
end
redis.call('DEL', K_MOVING_HISTORY, K_MOVING_STATE_HISTORY('dead'),
           K_MOVING_STATE_HISTORY('cancelled'))
for _, job in ipairs(redis.call('SMEMBERS', K_JOBS)) do
  redis.call('DEL', K_MOVING_JOB_HISTORY(job))
end
return {'move', redis.call('ZCARD', K_RUNS)}
