-- promote: move delayed jobs that are due (retries after their backoff, submits with delay_ms)
-- into their priority lane.
--
-- KEYS[1] delayed zset  KEYS[2..4] lane streams high, medium, low  KEYS[5] queue events stream
-- ARGV[1] now ms  ARGV[2] max jobs  ARGV[3] job key prefix  ARGV[4] progress key prefix
-- ARGV[5] progress maxlen  ARGV[6] events maxlen
-- ARGV[7] stats prefix (tally.lua)
-- ARGV[8..10] optional fair share (fair.lua, prepended): key prefix, tenant window, tenant max running;
-- with it a promoted job enters its lane or, past its tenant's window, the tenant's backlog.
-- Returns how many jobs were promoted.
--
-- Atomic so that a job leaves the delayed set exactly when its stream entry exists: several
-- executors run this concurrently and each due job must be promoted once.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local lanes = {high = KEYS[2], medium = KEYS[3], low = KEYS[4]}
local moved = 0
local fair = fair_context(ARGV[8], ARGV[3], ARGV[9] or '0', ARGV[10] or '0', '0')
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local jk = ARGV[3] .. id
  local cur = redis.call('HMGET', jk, 'state', 'priority', 'tenant', 'trace', 'attempt', 'total', 'tags')
  if cur[1] == 'scheduled' then
    redis.call('HSET', jk, 'state', 'pending', 'due', '0')
    tally_move(tally_of(ARGV[7], jk), 'scheduled', 'pending', ARGV[1])
    if fair and lanes[cur[2]] then
      fair_submit(fair, cur[2], lanes[cur[2]], cur[3] or '', id, cur[4] or '')
    else
      redis.call('XADD', lanes[cur[2]] or KEYS[3], '*', 'job', id, 'tenant', cur[3] or '', 'trace', cur[4] or '')
    end
    redis.call('XADD', ARGV[4] .. id, 'MAXLEN', '~', ARGV[5], '*', 'state', 'pending', 'pct', '0', 'cur', '0',
      'total', cur[6] or '0', 'step', '', 'msg', 'Waiting for an executor', 'ts', ARGV[1], 'attempt', cur[5] or '0')
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'kind', 'waiting', 'job', id, 'state', 'pending',
      'tenant', cur[3] or '', 'ts', ARGV[1], 'tags', cur[7] or '[]')
    moved = moved + 1
  end
end
return moved
