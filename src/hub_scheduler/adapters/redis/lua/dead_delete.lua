-- Forget dead letters (their runs stay in history until the workers' clean removes them after
-- the retention). ARGV: P, ids.
local removed = 0
for i = 2, #ARGV do
  if redis.call('ZREM', K_DEAD, ARGV[i]) == 1 then
    removed = removed + 1
  end
end
return removed
