-- Replace a workflow document if its version is still the one read (it becomes one more).
-- ARGV: P, id, expected version, doc, retention ms. Returns 1 when saved, 0 when another
-- save came first.
local key = K_WORKFLOW(ARGV[2])
if redis.call('HGET', key, 'ver') ~= ARGV[3] then return 0 end
redis.call('HSET', key, 'doc', ARGV[4], 'ver', tonumber(ARGV[3]) + 1)
redis.call('PEXPIRE', key, ARGV[5])
return 1
