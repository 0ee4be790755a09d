-- Delivery lanes, included (`--- @include alert_lane`) by alert_outcome.lua, alert_claim.lua and
-- alert_record.lua. A lane is a zset of the deliveries of one owner to one receiver (its URL), scored
-- in the order they were made; only its head — the oldest still pending — is in the due zset and is
-- ever attempted, so a receiver gets an owner's alerts in order (a `recovered` never overtakes the
-- `failed` before it while that one is retried), and the deliveries waiting behind a receiver that
-- is down cost the other receivers nothing.

-- Add delivery `id` at the end of `lane` (its score one past the last: the order the owner's
-- outcomes were applied in, which alert_outcome.lua keeps to the events stream's).
local function lane_push(lane, id, retention_ms)
  local last = redis.call('ZREVRANGE', lane, 0, 0, 'WITHSCORES')
  redis.call('ZADD', lane, (tonumber(last[2]) or 0) + 1, id)
  redis.call('PEXPIRE', lane, retention_ms)
end

-- The head of `lane`: its oldest delivery still pending. Those delivered or failed for good leave the
-- lane as they are met; one whose hash expired (retention) before it could be tried was lost to its
-- receiver, and is counted `expired` in the alert figures hash `figures`. nil when none is left.
local function lane_head(delivery_prefix, lane, figures)
  while true do
    local first = redis.call('ZRANGE', lane, 0, 0)[1]
    if not first then return nil end
    local state = redis.call('HGET', delivery_prefix .. first, 'state')
    if state == 'pending' then return first end
    if not state then redis.call('HINCRBY', figures, 'expired', 1) end
    redis.call('ZREM', lane, first)
  end
end
