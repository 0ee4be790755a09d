-- Rate limits: how many jobs may start per interval, queue-wide and per tenant (BullMQ's limiter
-- {max, duration}). Included (`--- @include limit`) where runs start (claim_entry.lua, for claim and
-- reclaim) and by fair.lua (a tenant's backlog enters a lane only within its start budget); not a
-- script of its own.
--
-- Each limiter is a sliding-window log: a zset of the starts of the last `duration` ms (member = the
-- job id and its run's fence token, so every start is its own member; score = the start's ms). Before
-- a start the log is trimmed to the window and counted, and a start is allowed only while fewer than
-- `max` remain. So no window of `duration` ms, wherever it begins, ever holds more than `max` starts
-- (a fixed window, INCR + PEXPIRE, lets 2 x max through across a boundary). The limiters read Redis's
-- own clock (TIME), once per script call, so the starts of every executor are stamped on one clock in
-- the order they happened; claim and reclaim stamp the job's `started` with that same time.
-- Keys, under the limit prefix L (shared.keys.Keys.limit_prefix, rate_log):
--   L .. 'queue'              zset  the queue's starts in the window
--   L .. 'tenant:' .. tenant  zset  one tenant's starts in the window
-- A log expires `duration` ms after its newest start: an idle limiter leaves nothing behind.
--
-- The context members read: limit_prefix, rate_max, rate_duration_ms (queue-wide; a max of 0 = off),
-- tenant_rate_max, tenant_rate_duration_ms (per tenant; a max of 0 = off).

local LIMIT = nil  -- this script call's limiters (limit_context), built once

-- The limiters as context `ctx` sets them, or nil when both are off.
local function limit_context(ctx)
  if LIMIT == nil then
    local queue_max, tenant_max = tonumber(ctx.rate_max or '0'), tonumber(ctx.tenant_rate_max or '0')
    if (queue_max > 0 or tenant_max > 0) and (ctx.limit_prefix or '') ~= '' then
      local t = redis.call('TIME')
      local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      LIMIT = {prefix = ctx.limit_prefix, now = now, stamp = string.format('%.0f', now),
        queue = {max = queue_max, duration = tonumber(ctx.rate_duration_ms or '0')},
        tenant = {max = tenant_max, duration = tonumber(ctx.tenant_rate_duration_ms or '0')}}
    else
      LIMIT = false
    end
  end
  return LIMIT or nil
end

-- The limiters of a script that starts runs (claim, reclaim): with one on, the script's `now` becomes
-- the limiters' clock, so a job's `started` is the very time its start was counted at.
local function limit_clock(ctx)
  local lim = limit_context(ctx)
  if lim then ctx.now = lim.stamp end
  return lim
end

-- The log of limiter `rule` (lim.queue or lim.tenant) named `name` ('queue', 'tenant:' .. tenant), or
-- nil when that limiter is off.
local function limit_log(lim, rule, name)
  if not lim or rule.max <= 0 or rule.duration <= 0 then return nil end
  return lim.prefix .. name
end

-- How many starts the log `key` of `rule` allows now (math.huge with no log); trims it to the window.
local function limit_left(lim, rule, key)
  if not key then return math.huge end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', lim.now - rule.duration)
  return math.max(rule.max - redis.call('ZCARD', key), 0)
end

-- Milliseconds until the log `key` of `rule` allows one start beyond `promised` starts already let
-- through but not yet taken; 0 = it does now, nil = waiting alone never will (too much is promised).
-- Call after limit_left (the log is trimmed).
local function limit_wait(lim, rule, key, promised)
  if not key then return 0 end
  local starts = redis.call('ZCARD', key)
  local expire = starts + promised - rule.max + 1  -- starts that must leave the window first
  if expire <= 0 then return 0 end
  if expire > starts then return nil end
  local nth = redis.call('ZRANGE', key, expire - 1, expire - 1, 'WITHSCORES')
  return math.max(tonumber(nth[2]) + rule.duration - lim.now, 1)
end

-- The queue-wide limiter: starts allowed now, and (when none is) ms until the next one is.
local function limit_queue(lim)
  local key = lim and limit_log(lim, lim.queue, 'queue')
  local left = limit_left(lim, lim and lim.queue, key)
  if left > 0 then return left, 0 end
  return 0, limit_wait(lim, lim.queue, key, 0)
end

-- The per-tenant limiter of `tenant`: starts allowed now beyond `promised` ones already let through,
-- and (when none is) ms until one is (nil: not by waiting alone).
local function limit_tenant(lim, tenant, promised)
  local key = lim and tenant ~= '' and limit_log(lim, lim.tenant, 'tenant:' .. tenant) or nil
  local left = limit_left(lim, lim and lim.tenant, key) - promised
  if left > 0 then return left, 0 end
  return 0, limit_wait(lim, lim.tenant, key, promised)
end

-- Record a start (`member`: unique per run) in the queue's log and in `tenant`'s.
local function limit_started(lim, tenant, member)
  if not lim then return end
  local logs = {{lim.queue, limit_log(lim, lim.queue, 'queue')}}
  if tenant ~= '' then logs[2] = {lim.tenant, limit_log(lim, lim.tenant, 'tenant:' .. tenant)} end
  for _, log in ipairs(logs) do
    if log[2] then
      redis.call('ZADD', log[2], lim.stamp, member)
      redis.call('PEXPIRE', log[2], log[1].duration)
    end
  end
end

-- The sooner of two waits in ms (0 and nil = none).
local function limit_sooner(a, b)
  if not a or a <= 0 then return b end
  if not b or b <= 0 then return a end
  return math.min(a, b)
end
