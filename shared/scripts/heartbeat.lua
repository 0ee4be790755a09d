-- heartbeat: renew the leases of this executor's running entries.
--
-- KEYS[1..3] lane streams high, medium, low
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] job key prefix
-- ARGV[4..] triples: lane index (1-3), entry id, job id, fence token ... (as 4 values: lane, entry, job, fence)
-- Returns the job ids whose lease could not be renewed (the run lost the job: fence moved on).
--
-- Atomic per entry so that an executor never re-takes an entry another executor has reclaimed:
-- the entry's idle time is reset (XCLAIM … JUSTID) only while the job's fence is still ours.
local lost = {}
for i = 4, #ARGV, 4 do
  local lane, entry, id, fence = KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local cur = redis.call('HMGET', ARGV[3] .. id, 'fence', 'state')
  if cur[1] == fence and cur[2] == 'running' then
    redis.call('XCLAIM', lane, ARGV[1], ARGV[2], 0, entry, 'JUSTID')
  else
    lost[#lost + 1] = id
  end
end
return lost
