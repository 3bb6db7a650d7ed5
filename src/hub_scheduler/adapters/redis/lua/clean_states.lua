-- Drop the entries of a state index (K_STATE_HISTORY) older than a cutoff whose run is gone
-- or no longer in that state. ARGV: P, state, older_than_ms, limit, entry id to scan after
-- ('-' from the start). Returns {removed, scanned, the last entry id scanned or false}.
local state = ARGV[2]
local index = K_STATE_HISTORY(state)
local entries = entries_before(index, ARGV[5], tonumber(ARGV[3]), tonumber(ARGV[4]))
local removed = 0
for _, entry in ipairs(entries) do
  local readable, got = pcall(run_get, entry[2][2], 'st')  -- one it cannot read stays
  if readable and got[1] ~= state then
    redis.call('XDEL', index, entry[1])
    removed = removed + 1
  end
end
local last = entries[#entries]
return {removed, #entries, last and last[1] or false}
