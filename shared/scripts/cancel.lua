-- cancel: stop a job. A waiting job (PENDING or SCHEDULED) is CANCELLED at once and never runs;
-- a RUNNING job is flagged and its executor told over the control channel to close its context.
--
-- KEYS[1] job hash  KEYS[2] delayed zset  KEYS[3] job progress stream  KEYS[4] queue events stream
-- KEYS[5] retention zset for unsuccessful jobs
-- ARGV[1] now ms  ARGV[2] progress maxlen  ARGV[3] events maxlen  ARGV[4] control channel
-- ARGV[5] tenant asking ('' = any)  ARGV[6] stats prefix (tally.lua)
-- Returns {outcome, state}: outcome is 'cancelled', 'cancelling', 'finished' or 'missing'.
--
-- Atomic so a cancel racing a claim either wins (the claim then acks and drops the entry) or
-- finds the job RUNNING and signals its executor: the job never runs after a 'cancelled' answer.
local cur = redis.call('HMGET', KEYS[1], 'state', 'tenant', 'id', 'attempt', 'total')
local state = cur[1]
if not state or (ARGV[5] ~= '' and cur[2] ~= ARGV[5]) then return {'missing', ''} end
if state == 'pending' or state == 'scheduled' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished', ARGV[1], 'msg', 'Cancelled', 'ts', ARGV[1],
    'error', cjson.encode({category = 'unknown', message = 'cancelled before it ran', step_index = -1,
    retryable = false}))
  redis.call('ZREM', KEYS[2], cur[3])
  tally_move(tally_of(ARGV[6], KEYS[1]), state, 'cancelled', ARGV[1])
  redis.call('ZADD', KEYS[5], tonumber(ARGV[1]), cur[3])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'state', 'cancelled', 'pct',
    redis.call('HGET', KEYS[1], 'pct') or '0', 'cur', '0', 'total', cur[5] or '0', 'step', '',
    'msg', 'Cancelled', 'ts', ARGV[1], 'attempt', cur[4] or '0', 'terminal', '1')
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'cancelled', 'job', cur[3],
    'state', 'cancelled', 'tenant', cur[2] or '', 'ts', ARGV[1])
  return {'cancelled', 'cancelled'}
end
if state == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  redis.call('PUBLISH', ARGV[4], 'cancel ' .. cur[3])
  return {'cancelling', state}
end
return {'finished', state}
