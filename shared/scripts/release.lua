-- release: hand a running job back to its lane at once (an executor shutting down gracefully),
-- so another executor takes it now instead of after the lease runs out.
--
-- KEYS[1] job hash  KEYS[2] lane stream  KEYS[3] job progress stream  KEYS[4] queue events stream
-- ARGV[1] fence token  ARGV[2] entry id  ARGV[3] group  ARGV[4] now ms  ARGV[5] progress maxlen
-- ARGV[6] events maxlen  ARGV[7] reason  ARGV[8] stats prefix (tally.lua)  ARGV[9] lane name
-- ARGV[10..12] optional fair share (fair.lua, prepended): key prefix, tenant window, tenant max running;
-- with it the job goes back under its tenant's window like any other (first in its backlog).
-- Returns 1, or 0 when the fence is stale (the job is not ours to give back).
--
-- Atomic so the job is never both in the lane and still owned: the fence moves on (a late
-- completion of the old run is refused), the old entry goes, a new entry comes, in one step.
local cur = redis.call('HMGET', KEYS[1], 'fence', 'state', 'id', 'tenant', 'trace', 'total', 'attempt')
if cur[1] ~= ARGV[1] or cur[2] ~= 'running' then return 0 end
redis.call('HINCRBY', KEYS[1], 'fence', 1)
-- The interrupted run does not count as an attempt.
local attempt = math.max(tonumber(cur[7] or '1') - 1, 0)
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempt', attempt, 'worker', '', 'msg', ARGV[7], 'ts', ARGV[4],
  'pct', '0', 'cur', '0', 'step', '')
tally_move(tally_of(ARGV[8], KEYS[1]), 'running', 'pending', ARGV[4])
redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
local fair = fair_context(ARGV[10], string.sub(KEYS[1], 1, #KEYS[1] - #cur[3]), ARGV[11] or '0', ARGV[12] or '0', '0')
if fair and cur[4] and cur[4] ~= '' then
  fair_submit(fair, ARGV[9], KEYS[2], cur[4], cur[3], cur[5] or '', true)
else
  redis.call('XADD', KEYS[2], '*', 'job', cur[3], 'tenant', cur[4] or '', 'trace', cur[5] or '')
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'state', 'pending', 'pct', '0', 'cur', '0',
  'total', cur[6] or '0', 'step', '', 'msg', ARGV[7], 'ts', ARGV[4], 'attempt', tostring(attempt))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'kind', 'waiting', 'job', cur[3], 'state', 'pending',
  'tenant', cur[4] or '', 'ts', ARGV[4])
return 1
