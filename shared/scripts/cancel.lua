-- cancel: stop a job. A waiting job (PENDING or SCHEDULED) is CANCELLED at once and never runs;
-- a RUNNING job is flagged and its executor told over the control channel to close its context.
--
-- KEYS[1] job hash  KEYS[2] delayed zset  KEYS[3] job progress stream  KEYS[4] queue events stream
-- KEYS[5] retention zset for unsuccessful jobs
-- ARGV[1] context (JSON, shared.queue.Queue.context): only_tenant (the tenant asking, '' = any),
--   error (the cancelled job's error, JSON encoded by shared.codec), control (the executors'
--   channel), now, progress_maxlen, events_maxlen, stats_prefix (tally.lua), run_prefix,
--   run_ttl_ms (run.lua)
-- Returns {outcome, state}: outcome is 'cancelled', 'cancelling', 'finished' or 'missing'.
--
-- Atomic so a cancel racing a claim either wins (the claim then acks and drops the entry) or
-- finds the job RUNNING and signals its executor: the job never runs after a 'cancelled' answer.
--- @include tally
--- @include run
--- @include common
local ctx = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'tenant', 'id')
local state, id = cur[1], cur[3]
if not state or (ctx.only_tenant ~= '' and cur[2] ~= ctx.only_tenant) then return {'missing', ''} end
if state == 'pending' or state == 'scheduled' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished', ctx.now, 'msg', 'Cancelled', 'ts', ctx.now,
    'error', ctx.error)
  redis.call('ZREM', KEYS[2], id)
  tally_move(tally_of(ctx.stats_prefix, KEYS[1]), state, 'cancelled', ctx.now)
  redis.call('ZADD', KEYS[5], ctx.now, id)
  run_note(ctx, KEYS[1], KEYS[2])
  emit_progress(ctx, KEYS[3], KEYS[1], {cur = '0', step = '', terminal = '1'})
  emit_event(ctx, KEYS[4], 'cancelled', KEYS[1])
  return {'cancelled', 'cancelled'}
end
if state == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  redis.call('PUBLISH', ctx.control, 'cancel ' .. id)
  return {'cancelling', state}
end
return {'finished', state}
