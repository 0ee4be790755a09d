-- The figures GetStats reads, kept by every script that moves a job between states; included by
-- them (`--- @include tally`), not a script of its own. Each job counts in two hashes under the stats prefix S
-- (shared.keys.Keys.stats_prefix): its lane's, and its tenant's share of that lane:
--   S .. 'lane:' .. lane
--   S .. 'tenant:' .. tenant .. ':' .. lane
-- Fields (shared.schema Figure and FigurePrefix; shared/stats.py reads them; the queue's and a
-- tenant's figures are sums over lanes):
--   n:<state>       jobs in each state now (pending, scheduled, running, completed, failed, ...);
--                   a job leaves its count when clean.lua removes it
--   dlq             dead-lettered jobs still in the dead-letter set
--   processed, failed, cancelled   runs that ended, ever; how many failed (or timed out), and how
--                   many were cancelled (a cancel is no failure: health's failures leave it out)
--   timed, processing_ms  ended runs whose time is known, and that time summed
--   last_processed, last_claimed, waiting_since   ms: the last end, the last claim, and when
--                   the count of waiting jobs last rose from zero (staleness in queue_health)
--   rm:<slot> rp:<slot> rf:<slot>   a ring of 60 one-minute buckets: the minute a slot counts,
--                   runs ended and runs failed in it (processing rate, failures in the last hour)

-- The figures hashes of a job of lane `priority` and tenant `tenant` (as its hash holds them: nil
-- when the job is gone, and then nil).
local function tally_keys(prefix, priority, tenant)
  if not priority then return nil end
  return {prefix .. 'lane:' .. priority, prefix .. 'tenant:' .. (tenant or '') .. ':' .. priority}
end

-- The figures hashes a job counts in, from its hash `jk` (one HMGET); nil when the job is gone.
-- Every function below takes them, and does nothing with nil.
local function tally_of(prefix, jk)
  local cur = redis.call('HMGET', jk, 'priority', 'tenant')
  return tally_keys(prefix, cur[1], cur[2])
end

-- Figures changes gathered over the runs one call ends (record.lua) and written once per hash and
-- field by tally_apply: the increments added up, the last value set. Every function below takes
-- such a `batch` as its last argument; without one (nil) it writes at once.
-- `rising_now` (ms, string): the batch also takes moves to 'pending', for a call whose every change
-- to a pending count is +1 (submit.lua's chunk): a count that was 0 before the call then rose from
-- zero at `rising_now` (waiting_since), which tally_apply tells from the count it reads back.
local function tally_batch(rising_now)
  return {incr = {}, set = {}, ring = {}, rising_now = rising_now}
end

local function tally_incr(batch, key, field, n)
  if not batch then return redis.call('HINCRBY', key, field, n) end
  local fields = batch.incr[key] or {}
  batch.incr[key] = fields
  fields[field] = (fields[field] or 0) + n
end

local function tally_set(batch, key, field, value)
  if not batch then return redis.call('HSET', key, field, value) end
  local fields = batch.set[key] or {}
  batch.set[key] = fields
  fields[field] = value
end

-- The job moves from state `from` to state `to` at `now` (ms, string); `from` nil = a new job,
-- `to` nil = a job removed. A move to 'pending' is batched only by a batch made with `rising_now`
-- (it reads the count it makes).
local function tally_move(keys, from, to, now, batch)
  if not keys or from == to then return end
  if to == 'pending' and not (batch and batch.rising_now) then batch = nil end
  for _, key in ipairs(keys) do
    if from then tally_incr(batch, key, 'n:' .. from, -1) end
    if to then
      local n = tally_incr(batch, key, 'n:' .. to, 1)
      if to == 'pending' and n == 1 then redis.call('HSET', key, 'waiting_since', now) end
    end
  end
end

-- The job was claimed (PENDING -> RUNNING), or reclaimed (RUNNING stays RUNNING).
local function tally_claimed(keys, from, now, batch)
  if not keys then return end
  tally_move(keys, from, 'running', now, batch)
  for _, key in ipairs(keys) do tally_set(batch, key, 'last_claimed', now) end
end

-- The job's dead letters change by `delta` (+1 dead-lettered, -1 left the dead-letter set).
local function tally_dead(keys, delta, batch)
  if not keys then return end
  for _, key in ipairs(keys) do tally_incr(batch, key, 'dlq', delta) end
end

-- The ring slot of `now` in hash `key` counts the minute of `now`: when it held an older minute,
-- it starts again from zero.
local function tally_turn(key, minute, slot)
  if redis.call('HGET', key, 'rm:' .. slot) ~= minute then
    redis.call('HSET', key, 'rm:' .. slot, minute, 'rp:' .. slot, 0, 'rf:' .. slot, 0)
  end
end

-- A run of the job ended in `state` at `now`, after `ms` of work (nil = not known).
local function tally_ended(keys, state, now, ms, batch)
  if not keys then return end
  local minute = math.floor(tonumber(now) / 60000)
  local slot = tostring(minute % 60)
  local cancelled = state == 'cancelled'
  local failed = state ~= 'completed' and not cancelled
  for _, key in ipairs(keys) do
    tally_incr(batch, key, 'processed', 1)
    tally_set(batch, key, 'last_processed', now)
    if ms then
      tally_incr(batch, key, 'timed', 1)
      tally_incr(batch, key, 'processing_ms', ms)
    end
    if failed then tally_incr(batch, key, 'failed', 1) end
    if cancelled then tally_incr(batch, key, 'cancelled', 1) end
    if batch then
      batch.ring[key] = {tostring(minute), slot}
    else
      tally_turn(key, tostring(minute), slot)
    end
    tally_incr(batch, key, 'rp:' .. slot, 1)
    if failed then tally_incr(batch, key, 'rf:' .. slot, 1) end
  end
end

-- Write what `batch` gathered: each hash's ring slot turned first (tally_ended), then one HINCRBY
-- per field and one HSET per hash.
local function tally_apply(batch)
  for key, at in pairs(batch.ring) do tally_turn(key, at[1], at[2]) end
  for key, fields in pairs(batch.incr) do
    for field, n in pairs(fields) do
      local now_n = redis.call('HINCRBY', key, field, n)
      if field == 'n:pending' and batch.rising_now and n > 0 and now_n == n then
        redis.call('HSET', key, 'waiting_since', batch.rising_now)
      end
    end
  end
  for key, fields in pairs(batch.set) do
    local flat = {}
    for field, value in pairs(fields) do
      flat[#flat + 1] = field
      flat[#flat + 1] = value
    end
    redis.call('HSET', key, unpack(flat))
  end
end
