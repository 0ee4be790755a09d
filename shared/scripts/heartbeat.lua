-- heartbeat: renew the leases of this executor's running entries.
--
-- KEYS[1..3] lane streams high, medium, low  KEYS[4..] the job hash of each lease, in order
-- ARGV[1] context (JSON, shared.queue.Queue.context): leases (a list of {lane = lane index 1-3,
--   entry = entry id, job = job id, fence = the run's token}), consumer, group
-- Returns the job ids whose lease could not be renewed (the run lost the job: fence moved on).
--
-- Atomic per entry so that an executor never re-takes an entry another executor has reclaimed:
-- the entry's idle time is reset (XCLAIM … JUSTID) only while the job's fence is still ours.
local ctx = cjson.decode(ARGV[1])
local lost = {}
for i, lease in ipairs(ctx.leases) do
  local cur = redis.call('HMGET', KEYS[3 + i], 'fence', 'state')
  if cur[1] == lease.fence and cur[2] == 'running' then
    redis.call('XCLAIM', KEYS[tonumber(lease.lane)], ctx.group, ctx.consumer, 0, lease.entry, 'JUSTID')
  else
    lost[#lost + 1] = lease.job
  end
end
return lost
