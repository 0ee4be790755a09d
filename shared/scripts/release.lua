-- release: hand a running job back to its lane at once (an executor shutting down gracefully),
-- so another executor takes it now instead of after the lease runs out.
--
-- KEYS[1] job hash  KEYS[2] lane stream  KEYS[3] job progress stream  KEYS[4] queue events stream
-- ARGV[1] context (JSON, shared.queue.Queue.context): fence (the run's token), entry (its lane
--   entry id), lane (its priority), reason, now, group, progress_maxlen, events_maxlen,
--   stats_prefix (tally.lua), job_prefix, fair_prefix, tenant_window, tenant_max_running
--   (fair.lua; a window of 0 = off), limit_prefix, tenant_rate_max, tenant_rate_duration_ms
--   (limit.lua, through fair.lua)
-- With fair share the job goes back under its tenant's window like any other (first in its backlog).
-- Returns 1, or 0 when the fence is stale (the job is not ours to give back).
--
-- Atomic so the job is never both in the lane and still owned: the fence moves on (a late
-- completion of the old run is refused), the old entry goes, a new entry comes, in one step.
--- @include tally
--- @include fair
--- @include common
local ctx = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'fence', 'state', 'id', 'tenant', 'trace', 'attempt')
if cur[1] ~= ctx.fence or cur[2] ~= 'running' then return 0 end
local id, tenant, trace = cur[3], cur[4] or '', cur[5] or ''
redis.call('HINCRBY', KEYS[1], 'fence', 1)
-- The interrupted run does not count as an attempt.
local attempt = math.max(tonumber(cur[6] or '1') - 1, 0)
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempt', attempt, 'worker', '', 'msg', ctx.reason, 'ts', ctx.now,
  'pct', '0', 'cur', '0', 'step', '')
tally_move(tally_of(ctx.stats_prefix, KEYS[1]), 'running', 'pending', ctx.now)
ack_entry(ctx, KEYS[2], ctx.entry)
local fair = fair_context(ctx, false)
if fair and tenant ~= '' then
  fair_submit(fair, ctx.lane, KEYS[2], tenant, id, trace, true)
else
  enter_lane(KEYS[2], KEYS[1], id, tenant, trace)
end
emit_progress(ctx, KEYS[3], KEYS[1])
emit_event(ctx, KEYS[4], 'waiting', KEYS[1])
return 1
