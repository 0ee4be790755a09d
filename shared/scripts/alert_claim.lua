-- alert_claim: take up to `count` webhook deliveries that are due, each under a lease.
--
-- KEYS[1] the due deliveries zset (score = when the next attempt is due, ms)  KEYS[2] the alert figures
-- ARGV[1] context (JSON): now, count, lease_ms, token (this claim's lease token), delivery_prefix
-- Returns, for each delivery taken, {id, its hash as HGETALL gives it}, its attempts already counted.
--
-- Atomic so that a delivery is taken by one replica: its score moves to the lease's end and its
-- hash holds the lease token, which alert_record.lua checks. A replica that dies mid-attempt loses
-- nothing: when the lease ends the delivery is due again and another replica takes it. A delivery
-- whose hash expired (retention) or that is no longer pending leaves the zset, and so does one behind
-- an older delivery of its lane (alert_lane.lua: only a lane's head is due; alert_record.lua makes the
-- next one due when that one is done).
--- @include alert_lane
local ctx = cjson.decode(ARGV[1])
local now = tonumber(ctx.now)
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ctx.count))) do
  local key = ctx.delivery_prefix .. id
  local lane = redis.call('HGET', key, 'lane')
  local head = id
  if lane and lane ~= '' then head = lane_head(ctx.delivery_prefix, lane, KEYS[2]) or id end
  if redis.call('HGET', key, 'state') ~= 'pending' or head ~= id then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('ZADD', KEYS[1], now + tonumber(ctx.lease_ms), id)
    redis.call('HSET', key, 'lease', ctx.token)
    redis.call('HINCRBY', key, 'attempts', 1)
    taken[#taken + 1] = {id, redis.call('HGETALL', key)}
  end
end
return taken
