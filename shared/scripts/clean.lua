-- clean: remove finished jobs for retention — the job hash, its progress stream, its tenant and tag
-- index entries, its idempotency key, and its place in the retention and dead-letter sets.
--
-- KEYS[1] retention zset to clean (completed or failed)  KEYS[2] completed zset  KEYS[3] failed zset
-- KEYS[4] dead-letter zset
-- ARGV[1] mode: 'excess' = the oldest beyond the newest ARGV[2] members; 'age' = members finished at
--         or before ARGV[3] ms, scanned from offset ARGV[5]
-- ARGV[2] keep (excess)  ARGV[3] cutoff ms (age)  ARGV[4] limit (most jobs looked at)  ARGV[5] offset
-- ARGV[6] only this state ('' = any)  ARGV[7] only this tenant ('' = any)
-- ARGV[8] job key prefix  ARGV[9] progress key prefix  ARGV[10] tenant jobs key format (%s tenant)
-- ARGV[11] tenant tag key format (%s tenant, %s tag)  ARGV[12] idempotency key format (%s tenant, %s key)
-- ARGV[13] stats prefix (tally.lua)
-- Returns {removed, examined}: a caller filtering by state or tenant goes on from offset
-- + examined - removed; fewer examined than the limit means nothing is left to look at.
--
-- Atomic per call so a job is removed whole or not at all (no index entry pointing at a missing
-- hash, no orphaned progress stream), and several API replicas cleaning at once never remove a
-- job twice or half. A job that ran again meanwhile (requeue.lua takes it out of the retention
-- sets) is never a candidate.
local limit = tonumber(ARGV[4])
local candidates
if ARGV[1] == 'excess' then
  local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
  if excess <= 0 then return {0, 0} end
  candidates = redis.call('ZRANGE', KEYS[1], 0, math.min(excess, limit) - 1)
else
  candidates = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', tonumber(ARGV[5]), limit)
end
local removed = 0
for _, id in ipairs(candidates) do
  local jk = ARGV[8] .. id
  local cur = redis.call('HMGET', jk, 'state', 'tenant', 'tags', 'options')
  local wanted = (ARGV[6] == '' or cur[1] == ARGV[6]) and (ARGV[7] == '' or cur[2] == ARGV[7])
  if wanted then
    if cur[2] then
      redis.call('ZREM', string.format(ARGV[10], cur[2]), id)
      local ok, tags = pcall(cjson.decode, cur[3] or '[]')
      if ok and type(tags) == 'table' then
        for _, tag in ipairs(tags) do redis.call('ZREM', string.format(ARGV[11], cur[2], tag), id) end
      end
      local ok2, options = pcall(cjson.decode, cur[4] or '{}')
      local idem = ok2 and type(options) == 'table' and options.idempotency_key
      if type(idem) == 'string' and idem ~= '' then
        local ik = string.format(ARGV[12], cur[2], idem)
        if redis.call('GET', ik) == id then redis.call('DEL', ik) end
      end
    end
    local figures = tally_of(ARGV[13], jk)
    if redis.call('ZREM', KEYS[4], id) == 1 then tally_dead(figures, -1) end
    tally_move(figures, cur[1], nil, '0')
    redis.call('DEL', jk, ARGV[9] .. id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    removed = removed + 1
  end
end
return {removed, #candidates}
