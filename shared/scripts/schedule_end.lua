-- schedule_end: keep how a job a schedule fired ended, for the schedule's history, which outlives the
-- job (retention removes finished jobs long before a monitoring team stops looking at a check).
--
-- KEYS[1] the schedule's ends hash (job id -> JSON: state, error, at)  KEYS[2] its runs list
-- KEYS[3] the schedule's hash
-- ARGV[1] context (JSON): job, ended (the JSON to keep), runs_max
-- Returns 1, or 0 when the schedule is gone (deleted since it fired the job: no history to keep).
--
-- Atomic so that the prune below sees the runs list as it is: the hash keeps only the ends of the
-- jobs the list still names once it holds twice as many as the list can.
local ctx = cjson.decode(ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ctx.job, ctx.ended)
if redis.call('HLEN', KEYS[1]) > 2 * tonumber(ctx.runs_max) then
  local named = {}
  for _, raw in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local ok, entry = pcall(cjson.decode, raw)
    if ok and type(entry) == 'table' and entry.job then named[entry.job] = true end
  end
  for _, job in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not named[job] then redis.call('HDEL', KEYS[1], job) end
  end
end
return 1
