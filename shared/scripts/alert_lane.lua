-- Delivery lanes, included (`--- @include alert_lane`) by alert_claim.lua and alert_record.lua. A lane
-- is a zset of the deliveries of one owner to one of its receivers, in the order they were made
-- (alert_outcome.lua adds them); only its head is ever attempted, so a receiver gets an owner's
-- alerts in order: a `recovered` never overtakes the `failed` before it while that one is retried.

-- The head of `lane`: its oldest delivery still pending. Those delivered, failed for good or gone
-- (their hash expired) leave the lane as they are met; nil when none is left.
local function lane_head(delivery_prefix, lane)
  while true do
    local first = redis.call('ZRANGE', lane, 0, 0)[1]
    if not first then return nil end
    if redis.call('HGET', delivery_prefix .. first, 'state') == 'pending' then return first end
    redis.call('ZREM', lane, first)
  end
end
