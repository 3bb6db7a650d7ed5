-- Forget dead letters (their run records expire with the retention). ARGV: P, retention_ms, ids.
local removed = 0
for i = 3, #ARGV do
  if redis.call('ZREM', K_DEAD, ARGV[i]) == 1 then
    redis.call('PEXPIRE', K_RUN(ARGV[i]), tonumber(ARGV[2]))
    removed = removed + 1
  end
end
return removed
