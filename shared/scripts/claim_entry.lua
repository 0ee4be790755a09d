-- Claiming one lane entry, included (`--- @include claim_entry`) by the executor's claim and
-- reclaim. Not a script of its own.
--- @include tally
--- @include limit
--- @include common

-- Take entry `entry_id` of lane stream `lane` for job `id` as a new run by the context's `worker`,
-- if the job is in one of `from_states`. Returns the job hash as a flat list with the new fence
-- token, or nil when the job is no longer waiting (cancelled, finished, deleted): then the entry is
-- acked and deleted here. Writes the run's first progress entry and the `active` event to
-- `events_key`, and counts the start in the rate limiters (limit.lua). Reads `job_prefix`,
-- `progress_prefix`, `stats_prefix`, `worker` and `now` (limit_clock's, with a limiter on) from `ctx`.
-- `figures`: a tally_batch the start is counted in (the caller applies it), or nil to count it now.
-- `takeover`: the run replaces one whose executor stopped (reclaim): it is the same attempt, run
-- again (the stalled count, not the attempts, bounds take-overs, as a stalled job in BullMQ);
-- `tries` counts it, so its files never overwrite the lost run's.
local function claim_entry(ctx, lane, entry_id, id, events_key, from_states, figures, takeover)
  local jk = ctx.job_prefix .. id
  local flat = redis.call('HGETALL', jk)
  local job = {}
  for i = 1, #flat, 2 do job[flat[i]] = flat[i + 1] end
  local state = job.state
  if not state or not from_states[state] then
    ack_entry(ctx, lane, entry_id)
    return nil
  end
  -- The run's fields, written at once; the counters as HINCRBY would leave them.
  local attempt = tonumber(job.attempt) or 0
  if not takeover or attempt == 0 then attempt = attempt + 1 end
  local run = {fence = tostring((tonumber(job.fence) or 0) + 1), attempt = tostring(attempt),
    tries = tostring((tonumber(job.tries) or 0) + 1),  -- never reset: names each run's artifacts apart, reruns too
    state = 'running', started = ctx.now, worker = ctx.worker, entry = entry_id,
    pct = '0', cur = '0', step = '', msg = 'Claimed by ' .. ctx.worker, ts = ctx.now}
  set_fields(jk, run)
  for name, value in pairs(run) do job[name] = value end
  tally_claimed(tally_keys(ctx.stats_prefix, job.priority, job.tenant), state, ctx.now, figures)
  local lim = limit_context(ctx)
  if lim then limit_started(lim, job.tenant or '', id .. ':' .. run.fence) end
  progress_entry(ctx, ctx.progress_prefix .. id, {job.state, job.attempt, job.pct, job.cur, job.total, job.step,
    job.msg, job.ts})
  event_entry(ctx, events_key, 'active', {job.id, job.state, job.tenant, job.tags})
  local reply = {}
  for name, value in pairs(job) do
    reply[#reply + 1] = name
    reply[#reply + 1] = value
  end
  return reply
end
