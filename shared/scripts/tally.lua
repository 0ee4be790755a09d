-- The figures GetStats reads, kept by every script that moves a job between states, prepended to
-- them. Not a script of its own. Each job counts in two hashes under the stats prefix S
-- (shared.keys.Keys.stats_prefix): its lane's, and its tenant's share of that lane:
--   S .. 'lane:' .. lane
--   S .. 'tenant:' .. tenant .. ':' .. lane
-- Fields (shared/stats.py reads them; the queue's and a tenant's figures are sums over lanes):
--   n:<state>       jobs in each state now (pending, scheduled, running, completed, failed, ...);
--                   a job leaves its count when clean.lua removes it
--   dlq             dead-lettered jobs still in the dead-letter set
--   processed, failed   runs that ended, ever, and how many of them unsuccessfully
--   timed, processing_ms  ended runs whose time is known, and that time summed
--   last_processed, last_claimed, waiting_since   ms: the last end, the last claim, and when
--                   the count of waiting jobs last rose from zero (staleness in queue_health)
--   rm:<slot> rp:<slot> rf:<slot>   a ring of 60 one-minute buckets: the minute a slot counts,
--                   runs ended and runs failed in it (processing rate, failures in the last hour)

local function tally_keys(prefix, lane, tenant)
  return {prefix .. 'lane:' .. lane, prefix .. 'tenant:' .. (tenant or '') .. ':' .. lane}
end

-- One job of `lane` and `tenant` moves from state `from` to state `to` at `now` (ms, string);
-- `from` nil = a new job, `to` nil = a job removed.
local function tally_move(prefix, lane, tenant, from, to, now)
  if from == to then return end
  for _, key in ipairs(tally_keys(prefix, lane, tenant)) do
    if from then redis.call('HINCRBY', key, 'n:' .. from, -1) end
    if to then
      local n = redis.call('HINCRBY', key, 'n:' .. to, 1)
      if to == 'pending' and n == 1 then redis.call('HSET', key, 'waiting_since', now) end
    end
  end
end

-- The same, reading the job's lane and tenant from its hash `jk`.
local function tally_job(prefix, jk, from, to, now)
  local cur = redis.call('HMGET', jk, 'priority', 'tenant')
  if cur[1] then tally_move(prefix, cur[1], cur[2], from, to, now) end
end

-- A job of the hash `jk` was claimed (PENDING → RUNNING), or reclaimed (RUNNING stays RUNNING).
local function tally_claimed(prefix, jk, from, now)
  local cur = redis.call('HMGET', jk, 'priority', 'tenant')
  if not cur[1] then return end
  tally_move(prefix, cur[1], cur[2], from, 'running', now)
  for _, key in ipairs(tally_keys(prefix, cur[1], cur[2])) do redis.call('HSET', key, 'last_claimed', now) end
end

-- Dead letters of the job `jk` change by `delta` (+1 dead-lettered, -1 left the dead-letter set).
local function tally_dead(prefix, jk, delta)
  local cur = redis.call('HMGET', jk, 'priority', 'tenant')
  if not cur[1] then return end
  for _, key in ipairs(tally_keys(prefix, cur[1], cur[2])) do redis.call('HINCRBY', key, 'dlq', delta) end
end

-- A run of the job `jk` ended in `state` at `now`, after `ms` of work (nil = not known).
local function tally_ended(prefix, jk, state, now, ms)
  local cur = redis.call('HMGET', jk, 'priority', 'tenant')
  if not cur[1] then return end
  local minute = math.floor(tonumber(now) / 60000)
  local slot = tostring(minute % 60)
  local failed = state ~= 'completed'
  for _, key in ipairs(tally_keys(prefix, cur[1], cur[2])) do
    redis.call('HINCRBY', key, 'processed', 1)
    redis.call('HSET', key, 'last_processed', now)
    if ms then
      redis.call('HINCRBY', key, 'timed', 1)
      redis.call('HINCRBY', key, 'processing_ms', ms)
    end
    if failed then redis.call('HINCRBY', key, 'failed', 1) end
    if redis.call('HGET', key, 'rm:' .. slot) ~= tostring(minute) then
      redis.call('HSET', key, 'rm:' .. slot, tostring(minute), 'rp:' .. slot, 0, 'rf:' .. slot, 0)
    end
    redis.call('HINCRBY', key, 'rp:' .. slot, 1)
    if failed then redis.call('HINCRBY', key, 'rf:' .. slot, 1) end
  end
end
