-- alert_outcome: apply one job outcome (an events-stream entry) to one alert owner — a schedule, or
-- a rule and a test name — and enqueue the webhook deliveries it causes.
--
-- KEYS[1] the owner's hash (shared.schema.OwnerField)  KEYS[2] the due deliveries zset
-- KEYS[3] the alert figures hash (alert_lane.lua counts deliveries that expired untried)
-- ARGV[1] context (JSON): now, event (the entry's id, "<ms>-<seq>"), outcome ('pass', 'fail' or ''
--   for an event that is neither, e.g. cancelled), owner_ttl_ms, retention_ms, delivery_prefix, and
--   deliveries: the candidates, each {id, when, after, fields, indexes}: `when` 'always' (made whatever
--   the last outcome was) or 'change' (made only when this outcome changes the owner's: a failure after
--   a pass or after nothing, a pass after a failure) — with `after` N (a notification's after_failures),
--   a failure is a change at the N-th failure in a row, and a pass only after a run of N or more;
--   `fields` the delivery hash (DeliveryField -> value,
--   strings); `indexes` the zsets ListDeliveries reads, by created ms; `fields.lane` the delivery's
--   lane (alert_lane.lua), which it joins in the order the candidates come; it is due only as its
--   lane's head.
-- Returns the ids of the deliveries made: none when the entry is not newer than the last one the
-- owner took (already applied, or overtaken by a newer one), nor for a delivery already there.
--
-- Atomic so that the compare of the owner's last outcome, its update and the deliveries happen
-- together: two API replicas, or one replica reading the same entry again after a crash before its
-- XACK, never both alert. Each delivery hash, and each index, expires after the retention.
--- @include common
--- @include alert_lane
local ctx = cjson.decode(ARGV[1])

local function parts(id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
  return tonumber(ms or '-1'), tonumber(seq or '-1')
end

-- Whether stream id `a` comes after stream id `b`.
local function after(a, b)
  local ams, aseq = parts(a)
  local bms, bseq = parts(b)
  return ams > bms or (ams == bms and aseq > bseq)
end

local cur = redis.call('HMGET', KEYS[1], 'outcome', 'event', 'fails')
if cur[2] and not after(ctx.event, cur[2]) then return {} end
local last = cur[1] or ''
-- Failures in a row before this outcome (an owner kept before the count: one, if it was failing).
local fails_before = tonumber(cur[3] or (last == 'fail' and '1' or '0'))
local fails = fails_before
if ctx.outcome == 'fail' then
  fails = fails_before + 1
elseif ctx.outcome == 'pass' then
  fails = 0
end
-- Whether this outcome is a change for a notification that waits for `n` failures in a row.
local function changed(n)
  if ctx.outcome == 'fail' then return fails == n end
  if ctx.outcome == 'pass' then return fails_before >= n end
  return false
end
redis.call('HSET', KEYS[1], 'event', ctx.event, 'fails', fails)
if ctx.outcome ~= '' and ctx.outcome ~= last then
  redis.call('HSET', KEYS[1], 'outcome', ctx.outcome, 'since', ctx.now)
end
redis.call('PEXPIRE', KEYS[1], ctx.owner_ttl_ms)

local now, retention = tonumber(ctx.now), tonumber(ctx.retention_ms)
local made = {}
for _, d in ipairs(ctx.deliveries) do
  local key = ctx.delivery_prefix .. d.id
  if (d.when == 'always' or changed(tonumber(d.after or 1))) and redis.call('EXISTS', key) == 0 then
    set_fields(key, d.fields)
    redis.call('PEXPIRE', key, retention)
    local lane = d.fields.lane
    if lane and lane ~= '' then
      lane_push(lane, d.id, retention)
      if lane_head(ctx.delivery_prefix, lane, KEYS[3]) == d.id then redis.call('ZADD', KEYS[2], now, d.id) end
    else
      redis.call('ZADD', KEYS[2], now, d.id)
    end
    for _, index in ipairs(d.indexes) do
      redis.call('ZADD', index, now, d.id)
      redis.call('ZREMRANGEBYSCORE', index, '-inf', now - retention)
      redis.call('PEXPIRE', index, retention)
    end
    made[#made + 1] = d.id
  end
end
return made
