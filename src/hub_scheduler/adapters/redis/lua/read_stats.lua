-- The counters of many jobs. ARGV: P, current hour, hours, current day, days, then job names.
-- Reads for each job its last `hours` hourly hashes, its last `days` daily ones and its
-- totals; returns per job, in order, a flat list of the non-empty ones:
-- {position, [field, value, ...], ...}, where position 0 .. hours - 1 is the hour that many
-- before the current one, hours .. hours + days - 1 the day, and -1 the totals.
local hour, hours = tonumber(ARGV[2]), tonumber(ARGV[3])
local day, days = tonumber(ARGV[4]), tonumber(ARGV[5])
local answers = {}
for i = 6, #ARGV do
  local job = ARGV[i]
  local found = {}
  local function read(position, key)
    local fields = redis.call('HGETALL', key)
    if #fields > 0 then
      found[#found + 1] = position
      found[#found + 1] = fields
    end
  end
  for h = 0, hours - 1 do read(h, K_STATS(job, 'h', hour - h)) end
  for d = 0, days - 1 do read(hours + d, K_STATS(job, 'd', day - d)) end
  read(-1, K_STATS_TOTAL(job))
  answers[#answers + 1] = found
end
return answers
