-- Shared by every script (prepended at load time, after the definitions scripts.py generates:
-- P, the key prefix from ARGV[1], and every key name built on it, K_<NAME> from keys.py).
-- The prefix carries the queue's hash tag, so every key lives in one Redis Cluster slot;
-- KEYS[1] is a key with that tag, declared so the script is routed to the right node.

-- History indexes are streams (keys.py: history, job_history, state_history) whose entries
-- hold the run id in field 'r'. Append run `id` to stream `key` as of `ms`: entry id
-- "<ms>-<seq>", or, when the stream already holds a later entry (another client's clock runs
-- ahead), the latest entry's ms. Returns the entry id.
local function index_add(key, ms, id)
  local added = redis.pcall('XADD', key, string.format('%d-*', ms), 'r', id)
  if type(added) == 'table' and added.err then
    local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1][1]
    added = redis.call('XADD', key, string.match(top, '^%d+') .. '-*', 'r', id)
  end
  return added
end

-- Append run `id` to stream `key` under entry id `entry`, or, when the stream already holds a
-- later one, as `index_add` does at `ms`.
local function index_at(key, entry, id, ms)
  if type(redis.pcall('XADD', key, entry, 'r', id)) == 'table' then index_add(key, ms, id) end
end

-- Index run `id` in stream `history` (all runs) and `job_history` (its job's) under one entry
-- id, so a clean removes it from both, as of `ms`. The job's entry holds 'r' = '': its run is
-- the overall entry's (18 bytes a run instead of 36; entry_run reads it). (A job's stream
-- holds only ids taken from the overall one, so it runs ahead of it only after a hand-edited
-- store: the entry then goes after its latest, with the run id in full, and a clean leaves the
-- overall entry, which listings skip once the run is gone.)
local function index_run_in(history, job_history, id, ms)
  local entry = index_add(history, ms, id)
  if type(redis.pcall('XADD', job_history, entry, 'r', '')) == 'table' then
    index_add(job_history, ms, id)
  end
end

-- The run id of `entry` ({entry id, {'r', run id}}) of a history stream: its 'r' or, for a
-- job's entry holding '', the run of the overall history's entry of the same id (nil when
-- that is gone).
local function entry_run(entry)
  local id = entry[2][2]
  if id ~= '' then return id end
  local overall = redis.call('XRANGE', K_HISTORY, entry[1], entry[1])[1]
  return overall and overall[2][2]
end

local function index_run(job, id, ms)
  index_run_in(K_HISTORY, K_JOB_HISTORY(job), id, ms)
end

-- The entries of history stream `key` from after entry id `after` ('-': from the first) to
-- before `before_ms`, at most `count`, oldest first (what clean.lua and clean_states.lua
-- scan).
local function entries_before(key, after, before_ms, count)
  if after ~= '-' then after = '(' .. after end
  return redis.call('XRANGE', key, after, string.format('%d-18446744073709551615', before_ms - 1),
                    'COUNT', count)
end

-- Store a new run (see codec.py for the field names) and place it in its queue.
-- `tc` (the trace context, JSON) may be nil or ''; so may `wf` and `wfs` (the workflow and
-- step of a workflow's run). Returns true when it went to a ready list (a worker may be woken).
local function create_run(now, id, job, pri, due, trg, pl, sch, slot, idk, org, tc, wf, wfs)
  local fields = {'v', '1', 'job', job, 'pri', pri, 'att', '1', 'enq', now, 'tok', '0',
                  'trg', trg, 'pl', pl}
  if sch ~= '' then table.insert(fields, 'sch'); table.insert(fields, sch) end
  if slot ~= '' then table.insert(fields, 'slot'); table.insert(fields, slot) end
  if idk ~= '' then table.insert(fields, 'idk'); table.insert(fields, idk) end
  if org ~= '' then table.insert(fields, 'org'); table.insert(fields, org) end
  if tc and tc ~= '' then table.insert(fields, 'tc'); table.insert(fields, tc) end
  if wf and wf ~= '' then
    table.insert(fields, 'wf'); table.insert(fields, wf)
    table.insert(fields, 'wfs'); table.insert(fields, wfs)
  end
  local due_ms = tonumber(due)
  local delayed = due_ms > now
  if delayed then
    table.insert(fields, 'st'); table.insert(fields, 'delayed')
    table.insert(fields, 'due'); table.insert(fields, due)
    table.insert(fields, 'rdy'); table.insert(fields, due)
  else
    table.insert(fields, 'st'); table.insert(fields, 'queued')
    table.insert(fields, 'rdy'); table.insert(fields, now)
  end
  redis.call('HSET', K_RUN(id), unpack(fields))
  index_run(job, id, now)
  redis.call('SADD', K_JOBS, job)
  if delayed then
    redis.call('ZADD', K_DELAYED, due_ms, id)
    return false
  end
  redis.call('LPUSH', K_READY(pri), id)
  return true
end

-- The attempt log of a run (codec.py: 'atl' is a JSON array of versioned entries, oldest
-- first; 'atd' counts the older ones dropped to keep at most MAX_ATTEMPTS). An entry records
-- the attempt that ran under the run's current claim: its number, start and worker come from
-- the run's fields, its end is `now`. `error_json` may be '' and `delay` nil.
local function attempt_entry(fields, outcome, now, error_json, delay)
  local entry = {v = 1, n = tonumber(fields.att or '1'), s = tonumber(fields.sta or now),
                 f = now, o = outcome}
  if fields.wrk and fields.wrk ~= '' then entry.w = fields.wrk end
  if error_json and error_json ~= '' then entry.e = cjson.decode(error_json) end
  if delay then entry.d = delay end
  return entry
end

-- Append `entry` to the log of run key `rk`, or, with `amend`, complete its last entry with
-- the entry's outcome, error and delay (the reaper settling a stall it already logged).
local function log_attempt(rk, entry, amend)
  local text = redis.call('HGET', rk, 'atl')
  local log = {}
  if text then log = cjson.decode(text) end
  local last = log[#log]
  if amend and last then
    last.o = entry.o; last.e = entry.e; last.d = entry.d
  else
    log[#log + 1] = entry
    if #log > MAX_ATTEMPTS then
      table.remove(log, 1)
      redis.call('HINCRBY', rk, 'atd', 1)
    end
  end
  redis.call('HSET', rk, 'atl', cjson.encode(log))
end

-- The fields an attempt entry needs, read from run key `rk`.
local function attempt_fields(rk)
  local got = redis.call('HMGET', rk, 'att', 'sta', 'wrk')
  return {att = got[1], sta = got[2], wrk = got[3]}
end

-- Run `id` (record `rk`) ended, or started again: if it is a workflow's step, record an event
-- for the workflow (runtime/workflows.py applies it), in the same script as the change.
-- `wf` is the run's 'wf' field when the caller read it already (false: it has none).
local function workflow_event(rk, id, now, wf)
  if wf == nil then wf = redis.call('HEXISTS', rk, 'wf') == 1 end
  if wf then
    redis.call('ZADD', K_WORKFLOW_EVENTS, 'NX', now, id)
  end
end

-- Finished runs are archived (codec.py, "Archived runs"): the record leaves its own hash for
-- field `id` of the archive hash its id's last two characters pick (keys.py archive_bucket),
-- as a JSON array — ARCHIVE_VERSION, the payload's length, the fields of codec.py's
-- ARCHIVED_FIELDS in order (archive_format().fields: false when absent; a whole number as a
-- number, ARCHIVE_RELATIVE ones less 'enq'; a value of ARCHIVE_CODES as its place there;
-- else a string), then name, value pairs for the rest — followed by the payload as it is.
-- A hash of its own costs ~300 bytes a run; an archive field ~185.
local function archive_key(id) return K_ARCHIVE(string.sub(id, -2)) end

-- A record's fields as a table (name -> value) from a flat {name, value, ...} list.
local function as_fields(flat)
  local fields = {}
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  return fields
end

-- Whether field text `value` is a whole number as Lua writes one, exact in a double (15
-- digits at most): the archive stores those as numbers.
local function is_whole(value)
  return value == '0' or (#value <= 15 and string.find(value, '^%-?[1-9]%d*$') ~= nil)
end

-- A string as JSON: most need no escape, and cjson.encode costs more than the check.
local function archive_string(value)
  if string.find(value, '[%c"\\]') then return cjson.encode(value) end
  return '"' .. value .. '"'
end

-- Field text `value` as an element of an archived record (see above): `base` is subtracted
-- from a whole number, `codes` (archive_format().code_of's, or nil) names the values stored
-- as one.
local function archive_entry(value, base, codes)
  if not value then return 'false' end  -- nil, or HMGET's false
  if codes then return codes[value] or archive_string(value) end
  if is_whole(value) then
    if base == 0 then return value end
    return string.format('%d', value - base)
  end
  return archive_string(value)
end

-- The archive's text of the run in hash `rk` as it ends `state` at `now` with error `err`
-- (nil: a success drops an earlier one, other ends keep it), or nil for a record this code
-- cannot tell apart from another format (it then stays a hash). Its 'due' is dropped.
-- One HMGET reads the fields every record has; the hash is read whole only when it holds
-- others (a Lua table per run costs more than the record's own encoding).
local function archive_text(rk, state, now, err)
  local F = archive_format()
  local got = redis.call('HMGET', rk, 'v', 'pl', 'due', 'err', unpack(F.fields))
  if got[1] ~= '1' then return nil end
  local present = 1
  for i = 2, #F.fields + 4 do
    if got[i] then present = present + 1 end
  end
  local enq, pl = got[5], got[2] or ''
  local base = (enq and is_whole(enq)) and tonumber(enq) or 0
  local out = {tostring(ARCHIVE_VERSION), tostring(#pl)}
  for i = 1, #F.fields do
    local name, value = F.fields[i], got[i + 4]
    if name == 'st' then value = state elseif name == 'fin' then value = string.format('%d', now) end
    out[i + 2] = archive_entry(value, F.relative[name] and base or 0, F.code_of[name])
  end
  if err == nil and state ~= 'succeeded' then err = got[4] end
  local rest = {}
  if redis.call('HLEN', rk) > present then  -- fields beyond these: read them all
    local fields = as_fields(redis.call('HGETALL', rk))
    for name in pairs(fields) do
      if not F.own[name] then rest[#rest + 1] = name end
    end
    table.sort(rest)
    for _, name in ipairs(rest) do
      out[#out + 1] = archive_string(name)
      out[#out + 1] = archive_string(fields[name])
    end
  end
  if err then
    out[#out + 1] = '"err"'
    out[#out + 1] = archive_string(err)
  end
  return '[' .. table.concat(out, ',') .. ']' .. pl
end

-- Finished run `id` as its hash would hold it, flat ({name, value, ...}), or nil when the
-- archive has no such run.
local function archived_flat(id)
  local text = redis.call('HGET', archive_key(id), id)
  if not text then return nil end
  local F = archive_format()
  local version, size = string.match(text, '^%[(%d+),(%d+)')
  if tonumber(version) ~= ARCHIVE_VERSION then
    error('run ' .. id .. ': unsupported archive version ' .. tostring(version))
  end
  size = tonumber(size)
  local values = cjson.decode(string.sub(text, 1, #text - size))
  local flat = {'v', '1'}
  if size > 0 then flat[3], flat[4] = 'pl', string.sub(text, -size) end
  local base = 0
  for i, name in ipairs(F.fields) do
    local value = values[i + 2]
    if value ~= false then
      if type(value) == 'number' and F.codes[name] then
        value = F.codes[name][value]
      elseif type(value) == 'number' then
        if name == 'enq' then base = value end
        value = string.format('%d', value + (F.relative[name] and base or 0))
      end
      flat[#flat + 1] = name
      flat[#flat + 1] = value
    end
  end
  for i = #F.fields + 3, #values, 2 do
    flat[#flat + 1] = values[i]
    flat[#flat + 1] = values[i + 1]
  end
  return flat
end

-- Run `id`'s record, flat, from its hash or the archive ({} when there is no such run).
local function run_flat(id)
  local flat = redis.call('HGETALL', K_RUN(id))
  if #flat > 0 then return flat end
  return archived_flat(id) or {}
end

-- Run `id`'s fields `names` (nil where absent), from its hash or the archive.
local function run_get(id, ...)
  local names = {...}
  local got = redis.call('HMGET', K_RUN(id), unpack(names))
  if redis.call('EXISTS', K_RUN(id)) == 1 then return got end
  local fields = as_fields(archived_flat(id) or {})
  for i, name in ipairs(names) do got[i] = fields[name] end
  return got
end

-- Run `id` (record `rk`) ended `state` at `now`, with error `err` (JSON) or nil (a success
-- drops an earlier attempt's error; other ends keep it). `wf`: whether it is a workflow's
-- step, nil when the caller has not read it. It gets its final state and end time and, when
-- it ended dead or cancelled (the states a listing may ask for among many runs that are
-- not), an entry in that state's index; a workflow's step records an event for it; then it
-- is archived. No TTL: the workers' clean removes finished runs after the retention. The
-- record is gone from `rk` after this.
local function end_run(rk, id, state, now, err, wf)
  if state == 'dead' or state == 'cancelled' then index_add(K_STATE_HISTORY(state), now, id) end
  workflow_event(rk, id, now, wf)
  local text = archive_text(rk, state, now, err)
  if text then
    redis.call('HSET', archive_key(id), id, text)
    redis.call('DEL', rk)
  else
    redis.call('HSET', rk, 'st', state, 'fin', now)
    redis.call('HDEL', rk, 'due')
    if err then
      redis.call('HSET', rk, 'err', err)
    elseif state == 'succeeded' then
      redis.call('HDEL', rk, 'err')
    end
  end
end

local function wake()
  redis.call(PUBLISH, K_WAKE, '1')
end

-- Global concurrency per job (`max_running`): K_LIMITS holds each limited job's limit,
-- K_RUNNING(job) the ids of its active runs, K_HELD(job) its runs waiting for a slot (claimed
-- from the ready list while at the limit, so no claim polls them again).

-- Whether job `job` may start one more run under limit `limit`. Ids of runs no longer active
-- (a record expired, a limit changed) are dropped first, so the count heals itself.
local function has_room(job, limit)
  local running = K_RUNNING(job)
  if redis.call('SCARD', running) < limit then return true end
  for _, id in ipairs(redis.call('SMEMBERS', running)) do
    if redis.call('HGET', K_RUN(id), 'st') ~= 'active' then redis.call('SREM', running, id) end
  end
  return redis.call('SCARD', running) < limit
end

-- Move the oldest held run of `job` to the front of its ready list (cancelled ones are
-- skipped). Returns true when one moved.
local function release_held(job)
  local held = K_HELD(job)
  while true do
    local id = redis.call('RPOP', held)
    if not id then return false end
    local state = redis.call('HMGET', K_RUN(id), 'st', 'pri')
    if state[1] == 'queued' then
      redis.call('RPUSH', K_READY(state[2]), id)
      wake()
      return true
    end
  end
end

-- Rate limits (a sliding window): K_RATES holds each rate-limited job's "<count> <window>
-- [payload field]" (ms), K_RATE(job, key) its key's starts within the last window, scored by
-- time. Whether run `id` (record `rk`) may start at `now`: nil when it may (its start is
-- logged), else when it may next: one window after the count-th latest start. A delayed run
-- checks again then (a slot is never promised ahead, so starts are counted when they happen,
-- however late a busy worker claims them).
local function rate_slot(job, id, rk, spec, now)
  local count, window, field = string.match(spec, '^(%d+) (%d+) ?(.*)$')
  count, window = tonumber(count), tonumber(window)
  local key = ''
  if field ~= '' then
    local value = cjson.decode(redis.call('HGET', rk, 'pl') or '{}')[field]
    if type(value) == 'string' then key = value
    elseif type(value) == 'number' then
      key = (value == math.floor(value)) and string.format('%d', value) or tostring(value)
    elseif type(value) == 'boolean' then key = tostring(value) end
  end
  local log = K_RATE(job, key)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  local n = redis.call('ZCARD', log)
  if n < count then
    redis.call('ZADD', log, now, id .. ':' .. now)
    redis.call('PEXPIRE', log, window + 1000)
    return nil
  end
  local kth = redis.call('ZRANGE', log, n - count, n - count, 'WITHSCORES')
  return tonumber(kth[2]) + window
end

-- A run of `job` left 'active': it no longer counts against a limit, and a held run of the
-- job may start. Call it before putting the run itself back in line, so that it stays first.
local function left_active(job, id)
  if redis.call('SREM', K_RUNNING(job), id) == 1 then release_held(job) end
end

-- A run's record as one JSON object string: one bulk reply to parse instead of ~30.
local function run_json(id)
  local fields = as_fields(redis.call('HGETALL', K_RUN(id)))
  fields['id'] = id
  return cjson.encode(fields)
end

-- Per-job statistics, counted as attempts finish and runs start: one hash per job per hour
-- and per day, plus totals (never expiring) and queue-wide totals. Fields: succeeded, failed,
-- dead; d<k> = attempts whose duration fell in bucket k of domain/histogram.py (13 per
-- decade, duration_edges()) and dsum = their total ms; w<k> and wsum the same for queue waits
-- (from when a run was due to when a worker started it). Hour and day hashes expire after
-- the retention, so metrics over 90 days cost ~260 small reads per job; each holds at most
-- ~2 x 131 bucket fields. A batch first tallies in Lua, then writes each counter once, so
-- the cost per batch does not grow with the number of attempts of one job in it.
local OUTCOMES = {'succeeded', 'failed', 'dead'}

-- The bucket of a duration in ms: how many lower edges are at or below it (bisect_right).
local function fine_bucket(ms)
  local edges = duration_edges()
  local lo, hi = 1, #edges + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if edges[mid] <= ms then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end

local function tally_fields(tally, job)
  local fields = tally[job]
  if not fields then fields = {}; tally[job] = fields end
  return fields
end

local function tally_time(fields, prefix, ms)
  if ms < 0 then ms = 0 end
  local bucket = prefix .. fine_bucket(ms)
  fields[bucket] = (fields[bucket] or 0) + 1
  fields[prefix .. 'sum'] = (fields[prefix .. 'sum'] or 0) + ms
end

local function tally_attempt(tally, job, outcome, now, started)
  local fields = tally_fields(tally, job)
  fields[outcome] = (fields[outcome] or 0) + 1
  tally_time(fields, 'd', started and (now - tonumber(started)) or 0)
end

-- A run started at `now` that was ready (due) since `ready` ms.
local function tally_wait(tally, job, now, ready)
  tally_time(tally_fields(tally, job), 'w', now - tonumber(ready))
end

local function flush_tally(tally, now, retention)
  local hour = math.floor(now / 3600000)
  local day = math.floor(now / 86400000)
  local ttl = retention + 86400000
  for job, fields in pairs(tally) do
    for _, key in ipairs({K_STATS(job, 'h', hour), K_STATS(job, 'd', day)}) do
      for field, n in pairs(fields) do redis.call('HINCRBY', key, field, n) end
      redis.call('PEXPIRE', key, ttl)
    end
    local totals = K_STATS_TOTAL(job)
    for field, n in pairs(fields) do redis.call('HINCRBY', totals, field, n) end
    for _, outcome in ipairs(OUTCOMES) do
      if fields[outcome] then redis.call('HINCRBY', K_STATS_QUEUE, outcome, fields[outcome]) end
    end
    if fields['succeeded'] then redis.call('HSET', totals, 'last_success', now) end
  end
end
