-- The counters of many jobs. ARGV: P, current hour, hours, current day, days, then job names.
-- Reads for each job its last `hours` hourly hashes, its last `days` daily ones and its
-- totals; returns per job, in order, a flat list of the non-empty ones:
-- {position, [field, value, ...], ...}, where position 0 .. hours - 1 is the hour that many
-- before the current one, hours .. hours + days - 1 the day, and -1 the totals.
-- flush_tally (common.lua) writes a job's hour, its day and its totals together, with one
-- expiry for the hour and the day: a job without totals has no buckets, and an hour whose
-- day has no hash is empty. So only jobs that ran are read further, and only the hours of
-- days they ran on (a long list is mostly jobs that ran seldom).
local hour, hours = tonumber(ARGV[2]), tonumber(ARGV[3])
local day, days = tonumber(ARGV[4]), tonumber(ARGV[5])
local first_hour_day = math.floor((hour - hours + 1) / 24)
local first_day = math.min(first_hour_day, day - days + 1)
local answers = {}
for i = 6, #ARGV do
  local job = ARGV[i]
  local found = {}
  local totals = redis.call('HGETALL', K_STATS_TOTAL(job))
  if #totals > 0 then
    local ran = {}
    for d = day, first_day, -1 do
      local fields = redis.call('HGETALL', K_STATS(job, 'd', d))
      if #fields > 0 then
        ran[d] = true
        if d > day - days then
          found[#found + 1] = hours + day - d
          found[#found + 1] = fields
        end
      end
    end
    for h = 0, hours - 1 do
      if ran[math.floor((hour - h) / 24)] then
        local fields = redis.call('HGETALL', K_STATS(job, 'h', hour - h))
        if #fields > 0 then
          found[#found + 1] = h
          found[#found + 1] = fields
        end
      end
    end
    found[#found + 1] = -1
    found[#found + 1] = totals
  end
  answers[#answers + 1] = found
end
return answers
