-- Enqueue a batch of runs. ARGV: P, now_ms, batch — a JSON array with one array of strings per
-- run: [id, job, pri, due_ms, trigger, payload, schedule_id, slot, idempotency key, window_ms,
-- origin, trace context JSON or ''] (one argument for the batch keeps the client's encoding cost low).
-- Returns a flat list {index, first run id, ...} for runs whose idempotency key was already
-- used within its window (those enqueue nothing); every other run was created.
local now = tonumber(ARGV[2])
local batch = cjson.decode(ARGV[3])
local repeats = {}
local woke = false
for i, run in ipairs(batch) do
  local id, job, pri, due, trg, pl = run[1], run[2], run[3], run[4], run[5], run[6]
  local sch, slot, idk, window, org, tc = run[7], run[8], run[9], run[10], run[11], run[12]
  local existing = false
  if idk ~= '' then
    -- The value is "<run id> <expiry ms>": the window follows the caller's clock (so a fake
    -- clock in tests moves it); PX only lets Redis drop the key afterwards.
    local idem_key = K_IDEMPOTENCY(idk)
    local seen = redis.call('GET', idem_key)
    if seen then
      local sep = string.find(seen, ' ', 1, true)
      if tonumber(string.sub(seen, sep + 1)) > now then existing = string.sub(seen, 1, sep - 1) end
    end
    if not existing then
      redis.call('SET', idem_key, id .. ' ' .. (now + tonumber(window)), 'PX', window)
    end
  end
  if existing then
    repeats[#repeats + 1] = i - 1
    repeats[#repeats + 1] = existing
  elseif create_run(now, id, job, pri, due, trg, pl, sch, slot, idk, org, tc) then
    woke = true
  end
end
if woke then wake() end
return repeats
