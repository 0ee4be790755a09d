-- clean: remove finished jobs for retention — the job hash, its progress stream, its tenant and tag
-- index entries, its idempotency key, and its place in the retention and dead-letter sets.
--
-- KEYS[1] retention zset to clean (completed or failed)  KEYS[2] completed zset  KEYS[3] failed zset
-- KEYS[4] dead-letter zset
-- ARGV[1] context (JSON, shared.queue.Queue.context): mode ('excess' = the oldest beyond the
--   newest `keep` members; 'age' = members finished at or before `cutoff` ms, scanned from
--   `offset`), keep, cutoff, offset, limit (most jobs looked at), only_state and only_tenant
--   ('' = any), job_prefix, progress_prefix, tenant_jobs_format (%s tenant), tenant_tag_format
--   (%s tenant, %s tag), idempotency_format (%s tenant, %s key), schedule_jobs_format (%s schedule
--   id), stats_prefix (tally.lua)
-- Returns {removed, examined, ids}: how many jobs went, how many were looked at, and the removed
-- jobs' ids (the caller deletes their artifacts from the artifact store, which Lua cannot reach).
-- A caller filtering by state or tenant goes on from offset + examined - removed; fewer examined
-- than the limit means nothing is left to look at.
--
-- Atomic per call so a job is removed whole or not at all (no index entry pointing at a missing
-- hash, no orphaned progress stream), and several API replicas cleaning at once never remove a
-- job twice or half. A job that ran again meanwhile (requeue.lua takes it out of the retention
-- sets) is never a candidate.
--- @include tally
local ctx = cjson.decode(ARGV[1])

-- Drop job `id`'s entries in its tenant's indexes: its jobs, its tags, its idempotency key, and its
-- schedule's jobs.
local function unindex(id, tenant, tags_json, options_json, schedule)
  redis.call('ZREM', string.format(ctx.tenant_jobs_format, tenant), id)
  if schedule and schedule ~= '' then redis.call('ZREM', string.format(ctx.schedule_jobs_format, schedule), id) end
  local ok, tags = pcall(cjson.decode, tags_json or '[]')
  if ok and type(tags) == 'table' then
    for _, tag in ipairs(tags) do redis.call('ZREM', string.format(ctx.tenant_tag_format, tenant, tag), id) end
  end
  local ok2, options = pcall(cjson.decode, options_json or '{}')
  local idem = ok2 and type(options) == 'table' and options.idempotency_key
  if type(idem) == 'string' and idem ~= '' then
    local ik = string.format(ctx.idempotency_format, tenant, idem)
    if redis.call('GET', ik) == id then redis.call('DEL', ik) end
  end
end

local limit = tonumber(ctx.limit)
local candidates
if ctx.mode == 'excess' then
  local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ctx.keep)
  if excess <= 0 then return {0, 0, {}} end
  candidates = redis.call('ZRANGE', KEYS[1], 0, math.min(excess, limit) - 1)
else
  candidates = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ctx.cutoff, 'LIMIT', tonumber(ctx.offset), limit)
end

local removed = {}
for _, id in ipairs(candidates) do
  local jk = ctx.job_prefix .. id
  local cur = redis.call('HMGET', jk, 'state', 'tenant', 'tags', 'options', 'schedule')
  local wanted = (ctx.only_state == '' or cur[1] == ctx.only_state) and (ctx.only_tenant == '' or cur[2] == ctx.only_tenant)
  if wanted then
    if cur[2] then unindex(id, cur[2], cur[3], cur[4], cur[5]) end
    local figures = tally_of(ctx.stats_prefix, jk)
    if redis.call('ZREM', KEYS[4], id) == 1 then tally_dead(figures, -1) end
    tally_move(figures, cur[1], nil, '0')
    redis.call('DEL', jk, ctx.progress_prefix .. id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    removed[#removed + 1] = id
  end
end
return {#removed, #candidates, removed}
