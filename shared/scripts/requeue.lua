-- requeue: run a finished job again (Retry, or RequeueDeadLetter) with its attempts reset.
--
-- KEYS[1] job hash  KEYS[2] target lane stream  KEYS[3] dead-letter zset  KEYS[4] failed retention zset
-- KEYS[5] completed retention zset  KEYS[6] job progress stream  KEYS[7] queue events stream
-- ARGV[1] now ms  ARGV[2] priority  ARGV[3] tenant asking ('' = any)  ARGV[4] progress maxlen
-- ARGV[5] events maxlen  ARGV[6] '1' = only a dead-lettered job  ARGV[7] stats prefix (tally.lua)
-- ARGV[8..11] optional fair share (fair.lua, prepended): key prefix, tenant window, tenant max running,
-- tenant max queued; with it the job enters its lane under its tenant's window like a new submit.
-- Returns {outcome, state}: outcome 'requeued', 'missing', 'conflict' (with the current state), or
-- {'limited', tenant} when the job's tenant already has its maximum of queued jobs (nothing is written).
--
-- Atomic so a job is never both finished and waiting: the old outcome is cleared, the job leaves
-- the dead-letter and retention sets and gets a new lane entry in one step. The old progress
-- stream is replaced: a rerun is a new run, and its stream closes with its own terminal event.
local cur = redis.call('HMGET', KEYS[1], 'state', 'tenant', 'id', 'trace', 'total', 'dlq_at')
local state = cur[1]
if not state or (ARGV[3] ~= '' and cur[2] ~= ARGV[3]) then return {'missing', ''} end
if ARGV[6] == '1' and not cur[6] then return {'missing', state} end
if state ~= 'failed' and state ~= 'timeout' and state ~= 'cancelled' then return {'conflict', state} end
local id = cur[3]
local lane = ARGV[2]
local fair = fair_context(ARGV[8], string.sub(KEYS[1], 1, #KEYS[1] - #id), ARGV[9] or '0', ARGV[10] or '0',
  ARGV[11] or '0')
local tenant = cur[2] or ''
if fair and tenant ~= '' and not fair_submit(fair, lane, KEYS[2], tenant, id, cur[4] or '') then
  return {'limited', tenant}
end
local before = tally_of(ARGV[7], KEYS[1])  -- the lane it ran in; the rerun may go to another
if redis.call('ZREM', KEYS[3], id) == 1 then tally_dead(before, -1) end
tally_move(before, state, nil, ARGV[1])
redis.call('HDEL', KEYS[1], 'result', 'error', 'finished', 'dlq_reason', 'dlq_at', 'cancel', 'stalled', 'started',
  'worker')
redis.call('HSET', KEYS[1], 'state', 'pending', 'priority', ARGV[2], 'attempt', '0', 'due', '0', 'pct', '0',
  'cur', '0', 'step', '', 'msg', 'Requeued', 'ts', ARGV[1])
tally_move(tally_of(ARGV[7], KEYS[1]), nil, 'pending', ARGV[1])
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
if not (fair and tenant ~= '') then redis.call('XADD', KEYS[2], '*', 'job', id, 'tenant', tenant, 'trace', cur[4] or '') end
redis.call('DEL', KEYS[6])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', 'state', 'pending', 'pct', '0', 'cur', '0',
  'total', cur[5] or '0', 'step', '', 'msg', 'Requeued', 'ts', ARGV[1], 'attempt', '0')
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[5], '*', 'kind', 'waiting', 'job', id, 'state', 'pending',
  'tenant', cur[2] or '', 'ts', ARGV[1])
return {'requeued', 'pending'}
