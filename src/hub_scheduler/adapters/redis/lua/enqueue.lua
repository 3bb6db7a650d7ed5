-- Enqueue a batch of runs. ARGV: P, now_ms, batch — a JSON array with one array of strings per
-- run: [id, job, pri, due_ms, trigger, payload, schedule_id, slot, idempotency key, window_ms,
-- origin, unique ('' | 'k' keep | 'r' replace), trace context (codec.py's tc, or ''),
-- workflow id and step (or '')] (one
-- argument for the batch keeps the client's encoding cost low) — retention_ms.
-- Returns a flat list {index, first run id, ...} for runs whose idempotency key was already
-- used within its window, or whose unique key is held by an unfinished run (those enqueue
-- nothing); every other run was created.
local now = tonumber(ARGV[2])
local batch = cjson.decode(ARGV[3])
local retention = tonumber(ARGV[4])
local repeats = {}
local woke = false
local UNFINISHED = {queued = true, delayed = true, retry_scheduled = true, active = true}

-- Cancel waiting run `id` (a unique job's holder being replaced), as cancel.lua does.
local function cancel_waiting(id)
  local rk = K_RUN(id)
  local state = redis.call('HMGET', rk, 'pri', 'job')
  redis.call('ZREM', K_DELAYED, id)
  redis.call('LREM', K_READY(state[1]), 1, id)
  redis.call('LREM', K_PARKED(state[2]), 1, id)
  redis.call('LREM', K_HELD(state[2]), 1, id)
  end_run(rk, id, 'cancelled', now)
end

for i, run in ipairs(batch) do
  local id, job, pri, due, trg, pl = run[1], run[2], run[3], run[4], run[5], run[6]
  local sch, slot, idk, window, org, uniq = run[7], run[8], run[9], run[10], run[11], run[12]
  local tc, wf, wfs = run[13], run[14], run[15]
  local existing = false
  if idk ~= '' then
    -- The value is "<run id> <expiry ms>": the window follows the caller's clock (so a fake
    -- clock in tests moves it); PX only lets Redis drop the key afterwards. A unique key's
    -- value is "<run id> u": held while that run is unfinished.
    local idem_key = K_IDEMPOTENCY(idk)
    local seen = redis.call('GET', idem_key)
    if seen then
      local sep = string.find(seen, ' ', 1, true)
      local holder, tail = string.sub(seen, 1, sep - 1), string.sub(seen, sep + 1)
      if tail == 'u' then
        local st = redis.call('HGET', K_RUN(holder), 'st')
        if st and UNFINISHED[st] then
          if uniq == 'r' and st ~= 'active' then cancel_waiting(holder) else existing = holder end
        end
      elseif tonumber(tail) > now then
        existing = holder
      end
    end
    if not existing then
      if uniq ~= '' then
        redis.call('SET', idem_key, id .. ' u', 'PX', retention)
      else
        redis.call('SET', idem_key, id .. ' ' .. (now + tonumber(window)), 'PX', window)
      end
    end
  end
  if existing then
    repeats[#repeats + 1] = i - 1
    repeats[#repeats + 1] = existing
  elseif create_run(now, id, job, pri, due, trg, pl, sch, slot, idk, org, tc, wf, wfs) then
    woke = true
  end
end
if woke then wake() end
return repeats
