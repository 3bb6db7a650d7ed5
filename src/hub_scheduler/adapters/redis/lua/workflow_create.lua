-- Store a new workflow document (version 1), index it by creation and record its event.
-- ARGV: P, id, doc (versioned JSON), created ms, retention ms.
local id, now, retention = ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('HSET', K_WORKFLOW(id), 'doc', ARGV[3], 'ver', 1)
redis.call('PEXPIRE', K_WORKFLOW(id), retention)
redis.call('ZADD', K_WORKFLOWS, now, id)
redis.call('ZREMRANGEBYSCORE', K_WORKFLOWS, '-inf', now - retention)
redis.call('ZADD', K_WORKFLOW_EVENTS, 'NX', now, id)
return 1
