-- Retry dead letters as new runs linked to them (they keep the dead run's trace context, so
-- their traces link back to it, and its workflow step, which resumes). ARGV: P, now_ms, then
-- dead id, new id pairs. Returns the new ids ('' where the dead letter was gone).
local now = tonumber(ARGV[2])
local out = {}
local woke = false
for i = 3, #ARGV, 2 do
  local id, new_id = ARGV[i], ARGV[i + 1]
  if redis.call('ZSCORE', K_DEAD, id) then
    -- Read first: a record that cannot be read stops the script before anything changed.
    local run = run_get(id, 'job', 'pri', 'pl', 'tc', 'wf', 'wfs')
    redis.call('ZREM', K_DEAD, id)
    if create_run(now, new_id, run[1], run[2], '0', 'dead_letter_retry', run[3], '', '', '', id,
                  run[4] or '', run[5] or '', run[6] or '') then
      woke = true
    end
    workflow_event(K_RUN(new_id), new_id, now)  -- a workflow's step: it resumes
    out[#out + 1] = new_id
  else
    out[#out + 1] = ''
  end
end
if woke then wake() end
return out
