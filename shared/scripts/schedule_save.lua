-- schedule_save: create or change a schedule, keeping its indexes and its place in the due zset.
--
-- KEYS[1] schedule hash  KEYS[2] tenant schedules zset  KEYS[3] schedules due zset
-- ARGV[1] context (JSON, shared.queue.Queue.context): mode ('create' | 'update'), id (the schedule's),
--   tenant, fields (hash fields to set, shared.schema.ScheduleField), max (the tenant's most
--   schedules, 0 = no limit; create only), retime (true: the timing changed, raise the generation so
--   fires computed under the old timing are refused), next_due (ms: its new score in the due zset;
--   '' = leave it), now
-- Returns 'ok', 'limited' (create: the tenant has its maximum of schedules; nothing is written) or
-- 'missing' (update: no such schedule for this tenant; nothing is written).
--
-- Atomic so the limit holds under concurrent creates, an update never recreates half of a schedule
-- deleted meanwhile, and a paused schedule is never left in the due zset.
--- @include common
local ctx = cjson.decode(ARGV[1])
if ctx.mode == 'create' then
  local max = tonumber(ctx.max)
  if max > 0 and redis.call('ZCARD', KEYS[2]) >= max then return 'limited' end
  redis.call('ZADD', KEYS[2], ctx.now, ctx.id)
elseif redis.call('HGET', KEYS[1], 'tenant') ~= ctx.tenant then
  return 'missing'
end
set_fields(KEYS[1], ctx.fields)
if ctx.retime == true then redis.call('HINCRBY', KEYS[1], 'gen', 1) end
if redis.call('HGET', KEYS[1], 'paused') == '1' then
  redis.call('ZREM', KEYS[3], ctx.id)
elseif ctx.next_due ~= '' then
  redis.call('ZADD', KEYS[3], ctx.next_due, ctx.id)
end
return 'ok'
