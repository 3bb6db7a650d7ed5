-- Fire a schedule's due slots: compare-and-advance, in one atomic step. Whatever number of
-- scheduler replicas, restarts and stale processes race here, the version check lets exactly
-- one of them record each slot.
-- ARGV: P, schedule id, expected version, now_ms, next fire ms ('' when over), fired count,
--       last slot ms, last outcome, retention_ms, ledger (JSON [[slot_ms, outcome, run index
--       or -1], ...]), runs (JSON, the enqueue.lua batch format).
-- Returns false when the version moved (another replica fired), else the enqueued run ids
-- in ledger order ('' for slots not enqueued).
local id = ARGV[2]
local state_key = K_SCHEDULE_STATE(id)
local version = redis.call('HGET', state_key, 'ver')
if version ~= ARGV[3] then return false end
local now = tonumber(ARGV[4])
local ledger = cjson.decode(ARGV[10])
local runs = cjson.decode(ARGV[11])

-- A paused job does not fire: its slots are ledgered as paused instead.
local job_paused = #runs > 0 and redis.call('SISMEMBER', K_PAUSED_JOBS, runs[1][2]) == 1
local run_ids = {}
local woke = false
local last_outcome = ARGV[8]
for i, entry in ipairs(ledger) do
  local outcome, run_id = entry[2], ''
  local index = tonumber(entry[3])
  if index >= 0 then
    if job_paused then
      outcome = 'paused'
    else
      local run = runs[index + 1]
      run_id = run[1]
      if create_run(now, run[1], run[2], run[3], run[4], run[5], run[6], run[7], run[8],
                    run[9], run[11]) then
        woke = true
      end
    end
  end
  if i == #ledger then last_outcome = outcome end
  local record = cjson.encode({s = entry[1], o = outcome, r = run_id, a = tostring(now),
                               n = entry[4] or '1'})
  redis.call('ZADD', K_LEDGER(id), tonumber(entry[1]), record)
  run_ids[#run_ids + 1] = run_id
end
redis.call('ZREMRANGEBYSCORE', K_LEDGER(id), '-inf', '(' .. (now - tonumber(ARGV[9])))

local fired = tonumber(ARGV[6])
if job_paused then fired = 0 end
redis.call('HINCRBY', state_key, 'runs', fired)
redis.call('HINCRBY', state_key, 'ver', 1)
if ARGV[7] ~= '' then
  redis.call('HSET', state_key, 'last', ARGV[7], 'outcome', last_outcome)
end
if ARGV[5] == '' then
  redis.call('HSET', state_key, 'next', '')
  redis.call('ZREM', K_SCHEDULES_DUE, id)
else
  redis.call('HSET', state_key, 'next', ARGV[5])
  redis.call('ZADD', K_SCHEDULES_DUE, tonumber(ARGV[5]), id)
end
if woke then wake() end
return run_ids
