-- Fire the due slots of a batch of schedules: for each, compare-and-advance in one atomic
-- step. Whatever number of scheduler replicas, restarts and stale processes race here, the
-- version check lets exactly one of them record each slot.
-- ARGV: P, now_ms, retention_ms, batch (JSON [[schedule id, expected version, next fire ms
--       ('' when over), fired count, last slot ms, last outcome, ledger, runs], ...]) where
--       ledger is [[slot_ms, outcome, run index or -1(, bulk count)], ...] and runs are in
--       the enqueue.lua batch format.
-- Returns one answer per schedule, in order: 0 when its version moved (another replica
-- fired; nothing changed), else the enqueued run ids in ledger order ('' for slots not
-- enqueued).
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local batch = cjson.decode(ARGV[4])
local answers = {}
local woke = false

local function fire_one(item)
  local id = item[1]
  local state_key = K_SCHEDULE_STATE(id)
  local version = redis.call('HGET', state_key, 'ver')
  if version ~= item[2] then return 0 end
  local ledger, runs = item[7], item[8]

  -- A paused job does not fire: its slots are ledgered as paused instead.
  local job_paused = #runs > 0 and redis.call('SISMEMBER', K_PAUSED_JOBS, runs[1][2]) == 1
  local run_ids = {}
  local last_outcome = item[6]
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
  redis.call('ZREMRANGEBYSCORE', K_LEDGER(id), '-inf', '(' .. (now - retention))

  local fired = tonumber(item[4])
  if job_paused then fired = 0 end
  redis.call('HINCRBY', state_key, 'runs', fired)
  redis.call('HINCRBY', state_key, 'ver', 1)
  if item[5] ~= '' then
    redis.call('HSET', state_key, 'last', item[5], 'outcome', last_outcome)
  end
  if item[3] == '' then
    redis.call('HSET', state_key, 'next', '')
    redis.call('ZREM', K_SCHEDULES_DUE, id)
  else
    redis.call('HSET', state_key, 'next', item[3])
    redis.call('ZADD', K_SCHEDULES_DUE, tonumber(item[3]), id)
  end
  return run_ids
end

for i, item in ipairs(batch) do
  answers[i] = fire_one(item)
end
if woke then wake() end
return answers
