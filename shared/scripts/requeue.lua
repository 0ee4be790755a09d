-- requeue: run a finished job again (Retry, or RequeueDeadLetter) with its attempts reset.
--
-- KEYS[1] job hash  KEYS[2] target lane stream  KEYS[3] dead-letter zset  KEYS[4] failed retention zset
-- KEYS[5] completed retention zset  KEYS[6] job progress stream  KEYS[7] queue events stream
-- ARGV[1] now ms  ARGV[2] priority  ARGV[3] tenant asking ('' = any)  ARGV[4] progress maxlen
-- ARGV[5] events maxlen  ARGV[6] '1' = only a dead-lettered job
-- Returns {outcome, state}: outcome 'requeued', 'missing' or 'conflict' (with the current state).
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
redis.call('HDEL', KEYS[1], 'result', 'error', 'finished', 'dlq_reason', 'dlq_at', 'cancel', 'stalled', 'started',
  'worker')
redis.call('HSET', KEYS[1], 'state', 'pending', 'priority', ARGV[2], 'attempt', '0', 'due', '0', 'pct', '0',
  'cur', '0', 'step', '', 'msg', 'Requeued', 'ts', ARGV[1])
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
redis.call('XADD', KEYS[2], '*', 'job', id, 'tenant', cur[2] or '', 'trace', cur[4] or '')
redis.call('DEL', KEYS[6])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], '*', 'state', 'pending', 'pct', '0', 'cur', '0',
  'total', cur[5] or '0', 'step', '', 'msg', 'Requeued', 'ts', ARGV[1], 'attempt', '0')
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[5], '*', 'kind', 'waiting', 'job', id, 'state', 'pending',
  'tenant', cur[2] or '', 'ts', ARGV[1])
return {'requeued', 'pending'}
