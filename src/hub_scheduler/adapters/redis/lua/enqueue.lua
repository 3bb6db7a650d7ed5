-- Enqueue a batch of runs. ARGV: P, now_ms, count, then 11 values per run:
-- id, job, pri, due_ms, trigger, payload, schedule_id, slot, idempotency key, window_ms, origin.
-- Returns {id, created} per run; created is 0 when the idempotency key was already used.
local now = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local out = {}
local woke = false
for i = 0, count - 1 do
  local b = 4 + i * 11
  local id, job, pri, due = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local trg, pl, sch, slot = ARGV[b + 4], ARGV[b + 5], ARGV[b + 6], ARGV[b + 7]
  local idk, window, org = ARGV[b + 8], ARGV[b + 9], ARGV[b + 10]
  local existing = false
  if idk ~= '' then
    -- The value is "<run id> <expiry ms>": the window follows the caller's clock (so a fake
    -- clock in tests moves it); PX only lets Redis drop the key afterwards.
    local idem_key = P .. ':idem:' .. idk
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
    out[#out + 1] = {existing, 0}
  else
    if create_run(now, id, job, pri, due, trg, pl, sch, slot, idk, org) then woke = true end
    out[#out + 1] = {id, 1}
  end
end
if woke then wake() end
return out
