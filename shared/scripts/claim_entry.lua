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
local function claim_entry(ctx, lane, entry_id, id, events_key, from_states)
  local jk = ctx.job_prefix .. id
  local state = redis.call('HGET', jk, 'state')
  if not state or not from_states[state] then
    ack_entry(ctx, lane, entry_id)
    return nil
  end
  local fence = redis.call('HINCRBY', jk, 'fence', 1)
  redis.call('HINCRBY', jk, 'attempt', 1)
  redis.call('HINCRBY', jk, 'tries', 1)  -- never reset: names each run's artifacts apart, reruns too
  redis.call('HSET', jk, 'state', 'running', 'started', ctx.now, 'worker', ctx.worker, 'entry', entry_id,
    'pct', '0', 'cur', '0', 'step', '', 'msg', 'Claimed by ' .. ctx.worker, 'ts', ctx.now)
  tally_claimed(tally_of(ctx.stats_prefix, jk), state, ctx.now)
  local lim = limit_context(ctx)
  if lim then limit_started(lim, redis.call('HGET', jk, 'tenant') or '', id .. ':' .. fence) end
  emit_progress(ctx, ctx.progress_prefix .. id, jk)
  emit_event(ctx, events_key, 'active', jk)
  return redis.call('HGETALL', jk)
end
