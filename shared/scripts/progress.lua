-- progress: record a running job's progress, if the caller still holds the job.
--
-- KEYS[1] job hash   KEYS[2] job progress stream   KEYS[3] queue events stream
-- ARGV[1] fence token  ARGV[2] progress maxlen  ARGV[3] events maxlen  ARGV[4] attempt
-- ARGV[5..] progress field/value pairs (pct, cur, total, step, msg, ts)
-- Returns 1; 2 when a cancel was requested for the job (the caller stops it); 0 when the fence
-- is stale or the job is no longer RUNNING (a zombie executor).
--
-- Atomic so a zombie's late progress can never land after another executor took the job over.
local cur = redis.call('HMGET', KEYS[1], 'fence', 'state', 'tenant', 'cancel', 'tags')
if cur[1] ~= ARGV[1] or cur[2] ~= 'running' then return 0 end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'state', 'running', 'attempt', ARGV[4], unpack(fields))
local given = {}
for i = 1, #fields, 2 do given[fields[i]] = fields[i + 1] end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'progress', 'job',
  redis.call('HGET', KEYS[1], 'id'), 'state', 'running', 'tenant', cur[3] or '', 'pct', given.pct or '0',
  'ts', given.ts or '', 'msg', given.msg or '', 'tags', cur[5] or '[]')
if cur[4] == '1' then return 2 end
return 1
