-- cancel: stop a job. A waiting job (PENDING or SCHEDULED) is CANCELLED at once and never runs;
-- a RUNNING job is flagged and its executor told over the control channel to close its context.
--
-- KEYS[1] job hash  KEYS[2] delayed zset  KEYS[3] job progress stream  KEYS[4] queue events stream
-- KEYS[5] retention zset for unsuccessful jobs  KEYS[6..8] lane streams high, medium, low
-- ARGV[1] context (JSON, shared.queue.Queue.context): only_tenant (the tenant asking, '' = any),
--   error (the cancelled job's error, JSON encoded by shared.codec), control (the executors'
--   channel), now, group, job_prefix, progress_maxlen, events_maxlen, stats_prefix (tally.lua),
--   run_prefix, run_ttl_ms (run.lua), fair_prefix, tenant_window, tenant_max_running
--   (fair.lua; a window of 0 = off), limit_prefix, tenant_rate_max, tenant_rate_duration_ms
--   (limit.lua, through fair.lua)
-- Returns {outcome, state}: outcome is 'cancelled', 'cancelling', 'finished' or 'missing'.
--
-- A PENDING job gives up the place it waits in at once: its lane entry (not yet delivered) is
-- deleted, or it leaves its tenant's fair-share backlog. So a job run again (Retry,
-- RequeueDeadLetter) waits in exactly one place, the one its rerun gives it, and its tenant's window
-- and rate limit no longer count it.
--
-- Atomic so a cancel racing a claim either wins (the claim then acks and drops the entry) or
-- finds the job RUNNING and signals its executor: the job never runs after a 'cancelled' answer.
--- @include tally
--- @include run
--- @include fair
--- @include common
local ctx = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'state', 'tenant', 'id', 'priority', 'entry')
local state, id = cur[1], cur[3]
if not state or (ctx.only_tenant ~= '' and cur[2] ~= ctx.only_tenant) then return {'missing', ''} end

-- The pending job leaves its lane entry (`entry` names it, when it has one) or its tenant's backlog.
local function leave_place(tenant, lane, entry_id)
  local stream = ({high = KEYS[6], medium = KEYS[7], low = KEYS[8]})[lane]
  if not stream then return end
  local found = entry_id and redis.call('XRANGE', stream, entry_id, entry_id)[1]
  local entry = lane_entry(found and found[2])
  if entry.job == id then ack_entry(ctx, stream, entry_id) end
  local fair = fair_context(ctx, false)
  if fair and tenant ~= '' then fair_withdraw(fair, lane, stream, tenant, id, entry.job == id and entry.fair) end
end

if state == 'pending' or state == 'scheduled' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished', ctx.now, 'msg', 'Cancelled', 'ts', ctx.now,
    'error', ctx.error)
  if state == 'pending' then leave_place(cur[2] or '', cur[4], cur[5] or nil) end
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
