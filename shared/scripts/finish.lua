-- finish: end a run — complete, fail, time out, cancel, or schedule a retry — and ack its entry.
--
-- KEYS[1] job hash  KEYS[2] lane stream  KEYS[3] job progress stream  KEYS[4] queue events stream
-- KEYS[5] retention zset (completed or failed)  KEYS[6] delayed zset  KEYS[7] dead-letter zset
-- ARGV[1] fence token  ARGV[2] entry id  ARGV[3] group  ARGV[4] new state (completed | failed |
-- timeout | cancelled | scheduled)  ARGV[5] result JSON ('' = none)  ARGV[6] error JSON ('' = none)
-- ARGV[7] now ms  ARGV[8] due ms (scheduled only)  ARGV[9] dead-letter reason ('' = not dead-lettered)
-- ARGV[10] progress maxlen  ARGV[11] events maxlen  ARGV[12] execution ms
-- ARGV[13] stats prefix (tally.lua)  ARGV[14..] final progress field/value pairs
-- Returns 1, or 0 when the fence is stale (another executor owns the job now): nothing changes.
--
-- The run's end is counted in the job's lane and tenant figures (tally.lua) in the same step.
--
-- Atomic so that the result, the ack and delete of the entry, the retention entry and the events
-- happen together: a crash before it redelivers the entry; after it, the job is done exactly once.
-- The dead-letter entry is written in the same step, before the ack.
local cur = redis.call('HMGET', KEYS[1], 'fence', 'state', 'id', 'tenant', 'attempt', 'tags')
if cur[1] ~= ARGV[1] or cur[2] ~= 'running' then return 0 end
local state, now, id = ARGV[4], ARGV[7], cur[3]
local figures = tally_of(ARGV[13], KEYS[1])
local fields = {}
for i = 14, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'state', state, unpack(fields))
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
local kind
if state == 'scheduled' then
  redis.call('HSET', KEYS[1], 'due', ARGV[8])
  redis.call('ZADD', KEYS[6], tonumber(ARGV[8]), id)
  kind = 'retrying'
else
  redis.call('HSET', KEYS[1], 'finished', now)
  redis.call('ZADD', KEYS[5], tonumber(now), id)
  if ARGV[9] ~= '' then
    redis.call('HSET', KEYS[1], 'dlq_reason', ARGV[9], 'dlq_at', now)
    if redis.call('ZADD', KEYS[7], tonumber(now), id) == 1 then tally_dead(figures, 1) end
  end
  tally_ended(figures, state, now, tonumber(ARGV[12]))
  kind = state
end
tally_move(figures, 'running', state, now)
redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
local terminal = state ~= 'scheduled' and '1' or '0'
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[10], '*', 'state', state, 'attempt', cur[5], 'terminal', terminal,
  unpack(fields))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[11], '*', 'kind', kind, 'job', id, 'state', state,
  'tenant', cur[4] or '', 'ts', now, 'tags', cur[6] or '[]')
if ARGV[9] ~= '' then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[11], '*', 'kind', 'dead_lettered', 'job', id,
    'state', state, 'tenant', cur[4] or '', 'ts', now, 'tags', cur[6] or '[]')
end
return 1
