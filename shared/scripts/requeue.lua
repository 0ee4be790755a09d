-- requeue: run a finished job again (Retry, or RequeueDeadLetter) with its attempts reset.
--
-- KEYS[1] job hash  KEYS[2] target lane stream  KEYS[3] dead-letter zset  KEYS[4] failed retention zset
-- KEYS[5] completed retention zset  KEYS[6] job progress stream  KEYS[7] queue events stream
-- ARGV[1] context (JSON, shared.queue.Queue.context): lane (the priority to run in), only_tenant
--   (the tenant asking, '' = any), dead_only (true = only a dead-lettered job), now,
--   progress_maxlen, events_maxlen, stats_prefix (tally.lua), job_prefix, fair_prefix,
--   tenant_window, tenant_max_running, tenant_max_queued (fair.lua; a window of 0 = off),
--   limit_prefix, tenant_rate_max, tenant_rate_duration_ms (limit.lua, through fair.lua)
-- With fair share the job enters its lane under its tenant's window like a new submit.
-- Returns {outcome, state}: outcome 'requeued', 'missing', 'conflict' (with the current state), or
-- {'limited', tenant} when the job's tenant already has its maximum of queued jobs (nothing is written).
--
-- Atomic so a job is never both finished and waiting: the old outcome is cleared, the job leaves
-- the dead-letter and retention sets and gets a new lane entry in one step. The old progress
-- stream is replaced: a rerun is a new run, and its stream closes with its own terminal event.
--- @include tally
--- @include fair
--- @include common
local ctx = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'tenant', 'id', 'trace', 'dlq_at')
local state = cur[1]
if not state or (ctx.only_tenant ~= '' and cur[2] ~= ctx.only_tenant) then return {'missing', ''} end
if ctx.dead_only and not cur[5] then return {'missing', state} end
if state ~= 'failed' and state ~= 'timeout' and state ~= 'cancelled' then return {'conflict', state} end
local id, lane, tenant, trace = cur[3], ctx.lane, cur[2] or '', cur[4] or ''
local fair = fair_context(ctx, true)
if fair and tenant ~= '' and not fair_submit(fair, lane, KEYS[2], tenant, id, trace) then
  return {'limited', tenant}
end
local before = tally_of(ctx.stats_prefix, KEYS[1])  -- the lane it ran in; the rerun may go to another
if redis.call('ZREM', KEYS[3], id) == 1 then tally_dead(before, -1) end
tally_move(before, state, nil, ctx.now)
redis.call('HDEL', KEYS[1], 'result', 'error', 'finished', 'dlq_reason', 'dlq_at', 'cancel', 'stalled', 'started',
  'worker')
redis.call('HSET', KEYS[1], 'state', 'pending', 'priority', lane, 'attempt', '0', 'due', '0', 'pct', '0',
  'cur', '0', 'step', '', 'msg', 'Requeued', 'ts', ctx.now)
tally_move(tally_of(ctx.stats_prefix, KEYS[1]), nil, 'pending', ctx.now)
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
if not (fair and tenant ~= '') then enter_lane(KEYS[2], KEYS[1], id, tenant, trace) end
redis.call('DEL', KEYS[6])
emit_progress(ctx, KEYS[6], KEYS[1])
emit_event(ctx, KEYS[7], 'waiting', KEYS[1])
return {'requeued', 'pending'}
