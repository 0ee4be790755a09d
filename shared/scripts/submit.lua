-- submit: create a job and make it runnable, in one atomic step.
--
-- KEYS[1] job hash            KEYS[2] lane stream (its priority)   KEYS[3] delayed zset
-- KEYS[4] idempotency key ("" placeholder key when none is used)   KEYS[5] tenant jobs zset
-- KEYS[6] queue events stream KEYS[7] job progress stream          KEYS[8..] tenant tag zsets
-- ARGV[1] context (JSON, shared.queue.Queue.context): id, job (the new hash's fields, from
--   shared.codec.new_job_fields), lane (its priority), tenant, trace, now (created ms), due (ms,
--   0 = now), idempotency_ttl (s, 0 = no key), progress_maxlen, events_maxlen, stats_prefix
--   (tally.lua), job_prefix, fair_prefix, tenant_window, tenant_max_running, tenant_max_queued
--   (fair.lua; a window of 0 = off, a max queued of 0 = no limit), limit_prefix, tenant_rate_max,
--   tenant_rate_duration_ms (limit.lua, for fair.lua: a tenant's lane entries stay within the starts
--   its rate limit allows; the rest wait in its backlog), held (true: a run's job held
--   back by its max_parallel — SCHEDULED, in the delayed zset at +inf until run.lua releases it)
-- Returns {job id, 1 if an earlier submit with the same idempotency key made it else 0}, or
-- {'', -1} when the tenant already has its maximum of queued jobs (nothing is written).
-- With fair share a pending job enters its lane, or its tenant's backlog.
--
-- Atomic because a crash between the hash and the stream entry would leave a job that never
-- runs (or an entry with no job), and because two concurrent submits with one idempotency key
-- must agree on one job.
--- @include tally
--- @include fair
--- @include common
local ctx = cjson.decode(ARGV[1])
local id, ttl, due = ctx.id, tonumber(ctx.idempotency_ttl), tonumber(ctx.due)
if ttl > 0 then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {existing, 1} end
end
local fair = fair_context(ctx, true)
local held = ctx.held == true
local waits = due > 0 or held
if fair and not waits and not fair_submit(fair, ctx.lane, KEYS[2], ctx.tenant, id, ctx.trace) then return {'', -1} end
set_fields(KEYS[1], ctx.job)
local state = waits and 'scheduled' or 'pending'
if held then
  redis.call('ZADD', KEYS[3], '+inf', id)
elseif due > 0 then
  redis.call('ZADD', KEYS[3], ctx.due, id)
elseif not fair then
  enter_lane(KEYS[2], id, ctx.tenant, ctx.trace)
end
tally_move(tally_of(ctx.stats_prefix, KEYS[1]), nil, state, ctx.now)
redis.call('ZADD', KEYS[5], ctx.now, id)
for i = 8, #KEYS do redis.call('ZADD', KEYS[i], ctx.now, id) end
if ttl > 0 then redis.call('SET', KEYS[4], id, 'EX', ctx.idempotency_ttl) end
emit_progress(ctx, KEYS[7], KEYS[1])
emit_event(ctx, KEYS[6], state == 'pending' and 'waiting' or 'delayed', KEYS[1])
return {id, 0}
