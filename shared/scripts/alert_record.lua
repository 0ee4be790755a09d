-- alert_record: record one webhook attempt's answer, and what comes next: delivered, due again at
-- `next_at`, or failed for good.
--
-- KEYS[1] the delivery's hash  KEYS[2] the due deliveries zset  KEYS[3] the alert figures hash
--   (delivered / failed: deliveries that ended so, for /metrics)
-- ARGV[1] context (JSON): now, id, token (the lease alert_claim.lua gave), delivered ('1' = the
--   receiver answered 2xx), status, response, error, next_at (ms of the next attempt; '0' = none:
--   the delivery failed)
-- Returns the delivery's state now (pending, delivered, failed), or '' when the lease was lost
-- (another replica took the delivery over): nothing changes then.
--
-- Atomic so that the answer, the state and the due entry agree, and a replica whose lease ran out
-- cannot overwrite the attempt that took its place. A delivery done (delivered or failed for good)
-- leaves its lane, and the next one of the lane, which waited behind it, is due at once.
--- @include alert_lane
local ctx = cjson.decode(ARGV[1])
if redis.call('HGET', KEYS[1], 'lease') ~= ctx.token then return '' end
local state = 'pending'
if ctx.delivered == '1' then
  state = 'delivered'
elseif ctx.next_at == '0' then
  state = 'failed'
end
redis.call('HSET', KEYS[1], 'state', state, 'status', ctx.status, 'response', ctx.response, 'error', ctx.error,
  'last_at', ctx.now, 'lease', '')
if state == 'pending' then
  redis.call('HSET', KEYS[1], 'next_at', ctx.next_at)
  redis.call('ZADD', KEYS[2], tonumber(ctx.next_at), ctx.id)
else
  redis.call('HSET', KEYS[1], 'next_at', '0')
  redis.call('ZREM', KEYS[2], ctx.id)
  redis.call('HINCRBY', KEYS[3], state, 1)
  local lane = redis.call('HGET', KEYS[1], 'lane')
  if lane and lane ~= '' then
    redis.call('ZREM', lane, ctx.id)
    local next_id = lane_head(ctx.delivery_prefix, lane, KEYS[3])
    if next_id then redis.call('ZADD', KEYS[2], tonumber(ctx.now), next_id) end
  end
end
return state
