-- submit: create a job and make it runnable, in one atomic step.
--
-- KEYS[1] job hash            KEYS[2] lane stream (its priority)   KEYS[3] delayed zset
-- KEYS[4] idempotency key ("" placeholder key when none is used)   KEYS[5] tenant jobs zset
-- KEYS[6] queue events stream KEYS[7] job progress stream          KEYS[8..] tenant tag zsets
-- ARGV[1] job id  ARGV[2] idempotency TTL (s, 0 = no key)  ARGV[3] created ms  ARGV[4] due ms (0 = now)
-- ARGV[5] events maxlen  ARGV[6] progress maxlen  ARGV[7] trace context  ARGV[8] tenant
-- ARGV[9] fair-share key prefix  ARGV[10] tenant window (0 = no fair share)  ARGV[11] tenant max running
-- ARGV[12] tenant max queued (0 = no limit)  ARGV[13] lane name  ARGV[14] stats prefix (tally.lua)
-- ARGV[15..] job hash field/value pairs
-- Returns {job id, 1 if an earlier submit with the same idempotency key made it else 0}, or
-- {'', -1} when the tenant already has its maximum of queued jobs (nothing is written).
-- With fair share (fair.lua, prepended) a pending job enters its lane, or its tenant's backlog.
--
-- Atomic because a crash between the hash and the stream entry would leave a job that never
-- runs (or an entry with no job), and because two concurrent submits with one idempotency key
-- must agree on one job.
local id = ARGV[1]
if tonumber(ARGV[2]) > 0 then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {existing, 1} end
end
local fair = fair_context(ARGV[9], string.sub(KEYS[1], 1, #KEYS[1] - #id), ARGV[10], ARGV[11], ARGV[12])
local due = tonumber(ARGV[4])
if fair and due <= 0 and not fair_submit(fair, ARGV[13], KEYS[2], ARGV[8], id, ARGV[7]) then return {'', -1} end
local fields = {}
for i = 15, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
local state
if due > 0 then
  redis.call('ZADD', KEYS[3], due, id)
  state = 'scheduled'
else
  if not fair then redis.call('XADD', KEYS[2], '*', 'job', id, 'tenant', ARGV[8], 'trace', ARGV[7]) end
  state = 'pending'
end
tally_move(tally_of(ARGV[14], KEYS[1]), nil, state, ARGV[3])
local created = tonumber(ARGV[3])
redis.call('ZADD', KEYS[5], created, id)
for i = 8, #KEYS do redis.call('ZADD', KEYS[i], created, id) end
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[4], id, 'EX', ARGV[2]) end
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[6], '*', 'state', state, 'pct', '0', 'cur', '0',
  'total', redis.call('HGET', KEYS[1], 'total') or '0', 'step', '', 'msg', 'Queued', 'ts', ARGV[3],
  'attempt', '0')
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', 'kind', state == 'pending' and 'waiting' or 'delayed',
  'job', id, 'state', state, 'tenant', ARGV[8], 'ts', ARGV[3], 'tags', redis.call('HGET', KEYS[1], 'tags') or '[]')
return {id, 0}
