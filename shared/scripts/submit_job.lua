-- Submitting a job, included (`--- @include submit_job`) by submit.lua and by the scripts that submit
-- a job as one of their steps (a schedule's fire). Not a script of its own.
--
-- `submit_keys(keys, first, last)`: the keys submit_job takes, from `keys` (a script's KEYS) at
-- `first`, in this order: job hash, lane stream (its priority), delayed zset, idempotency key (""
-- placeholder key when none is used), tenant jobs zset, queue events stream, job progress stream,
-- then the tenant tag zsets up to `last` (nil: to the end).
--
-- `submit_job(ctx, k)`: `ctx` holds id, job (the new hash's fields, from shared.codec.new_job_fields;
-- or job_flat: the same as a flat list name, value, name, value, ..., with row: at least the fields
-- priority, tenant, state, attempt, pct, cur, total, step, msg, ts, tags of it by name), figures (a
-- tally_batch(now) for the job's figures, written by the caller's tally_apply; nil: at once),
-- lane (its priority), tenant, trace, now (created ms), due (ms, 0 = now), idempotency_ttl (s, 0 = no
-- key), progress_maxlen, events_maxlen, stats_prefix (tally.lua), job_prefix, fair_prefix,
-- tenant_window, tenant_max_running, tenant_max_queued (fair.lua; a window of 0 = off, a max queued
-- of 0 = no limit), limit_prefix, tenant_rate_max, tenant_rate_duration_ms (limit.lua, for fair.lua: a
-- tenant's lane entries stay within the starts its rate limit allows; the rest wait in its backlog), held (true: a run's job held back by its max_parallel — SCHEDULED, in the delayed
-- zset at +inf until run.lua releases it). Returns {job id, 1 if an earlier submit with the same
-- idempotency key made it else 0}, or {'', -1} when the tenant already has its maximum of queued jobs
-- (nothing is written). With fair share a pending job enters its lane, or its tenant's backlog.
--- @include tally
--- @include fair
--- @include common

local function submit_keys(keys, first, last)
  local k = {job = keys[first], lane = keys[first + 1], delayed = keys[first + 2], idem = keys[first + 3],
    tenant_jobs = keys[first + 4], events = keys[first + 5], progress = keys[first + 6], tags = {}}
  for i = first + 7, last or #keys do k.tags[#k.tags + 1] = keys[i] end
  return k
end

local function submit_job(ctx, k)
  local id, ttl, due = ctx.id, tonumber(ctx.idempotency_ttl), tonumber(ctx.due)
  if ttl > 0 then
    local existing = redis.call('GET', k.idem)
    if existing then return {existing, 1} end
  end
  local fair = fair_context(ctx, true)
  local held = ctx.held == true
  local waits = due > 0 or held
  if fair and not waits and not fair_submit(fair, ctx.lane, k.lane, ctx.tenant, id, ctx.trace) then return {'', -1} end
  if ctx.job_flat then redis.call('HSET', k.job, unpack(ctx.job_flat)) else set_fields(k.job, ctx.job) end
  local row = ctx.row or ctx.job  -- the fields just written, by name: nothing to read back
  local state = waits and 'scheduled' or 'pending'
  if held then
    redis.call('ZADD', k.delayed, '+inf', id)
  elseif due > 0 then
    redis.call('ZADD', k.delayed, ctx.due, id)
  elseif not fair then
    enter_lane(k.lane, k.job, id, ctx.tenant, ctx.trace)
  end
  tally_move(tally_keys(ctx.stats_prefix, row.priority, row.tenant), nil, state, ctx.now, ctx.figures)
  redis.call('ZADD', k.tenant_jobs, ctx.now, id)
  for _, tag_key in ipairs(k.tags) do redis.call('ZADD', tag_key, ctx.now, id) end
  if ttl > 0 then redis.call('SET', k.idem, id, 'EX', ctx.idempotency_ttl) end
  progress_entry(ctx, k.progress, {row.state, row.attempt, row.pct, row.cur, row.total, row.step, row.msg, row.ts})
  event_entry(ctx, k.events, state == 'pending' and 'waiting' or 'delayed', {id, row.state, row.tenant, row.tags})
  return {id, 0}
end
