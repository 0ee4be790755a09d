-- schedule_save: create or change a schedule, keeping its indexes and its place in the due zset.
--
-- KEYS[1] schedule hash  KEYS[2] tenant schedules zset  KEYS[3] schedules due zset  KEYS[4] schedule runs list
-- ARGV[1] context (JSON, shared.queue.Queue.context): mode ('create' | 'update'), id (the schedule's),
--   tenant, fields (hash fields to set, shared.schema.ScheduleField), max (the tenant's most
--   schedules, 0 = no limit; create only), retime (true: the timing changed, raise the generation so
--   fires computed under the old timing are refused), next_due (ms: its new score in the due zset;
--   '' = leave it), runs_max (entries kept in the runs list), now
-- A fire BUFFER_ONE held is dropped when the update pauses the schedule or changes its timing
-- (`fields` clears `buffered`); it is then recorded in the runs list as skipped, saying why.
-- Returns 'ok', 'limited' (create: the tenant has its maximum of schedules; nothing is written) or
-- 'missing' (update: no such schedule for this tenant; nothing is written).
--
-- Atomic so the limit holds under concurrent creates, an update never recreates half of a schedule
-- deleted meanwhile, a paused schedule is never left in the due zset, and a held fire is either
-- started by schedule_fire.lua's drain or recorded as skipped here, never both and never neither.
--- @include common
--- @include schedule_run
local ctx = cjson.decode(ARGV[1])
if ctx.mode == 'create' then
  local max = tonumber(ctx.max)
  if max > 0 and redis.call('ZCARD', KEYS[2]) >= max then return 'limited' end
  redis.call('ZADD', KEYS[2], ctx.now, ctx.id)
elseif redis.call('HGET', KEYS[1], 'tenant') ~= ctx.tenant then
  return 'missing'
end
local held = redis.call('HGET', KEYS[1], 'buffered') or ''
set_fields(KEYS[1], ctx.fields)
if ctx.retime == true then redis.call('HINCRBY', KEYS[1], 'gen', 1) end
-- `fields` always carries `paused`, and `buffered` cleared when the timing changed.
local paused = ctx.fields.paused == '1'
if held ~= '' and (paused or ctx.fields.buffered == '') then
  redis.call('HSET', KEYS[1], 'buffered', '')
  skip_run(ctx, KEYS[1], KEYS[4], held, paused
    and 'the schedule was paused while this fire was held (overlap BUFFER_ONE)'
    or "the schedule's timing changed while this fire was held (overlap BUFFER_ONE)")
end
if paused then
  redis.call('ZREM', KEYS[3], ctx.id)
elseif ctx.next_due ~= '' then
  redis.call('ZADD', KEYS[3], ctx.next_due, ctx.id)
end
return 'ok'
