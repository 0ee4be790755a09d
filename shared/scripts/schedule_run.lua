-- The writes of a schedule's runs list, which both schedule scripts make, written once; included
-- (`--- @include schedule_run`), not a script of its own. An entry is the JSON that
-- shared.schedules.encoding.run_from_json reads: fire (ms), job, skipped, reason, triggered.
--
-- `ctx` is the script's context (ARGV[1], decoded): the functions read `runs_max` from it.

-- Put `entry` at the head of `runs`, a schedule's runs list (newest first), keeping `ctx.runs_max`.
local function record_run(ctx, runs, entry)
  redis.call('LPUSH', runs, cjson.encode(entry))
  redis.call('LTRIM', runs, 0, tonumber(ctx.runs_max) - 1)
end

-- Record the fire at `fire` (ms) of the schedule in hash `sk` as skipped for `reason`, and count it.
local function skip_run(ctx, sk, runs, fire, reason)
  redis.call('HINCRBY', sk, 'skipped', 1)
  record_run(ctx, runs, {fire = fire, skipped = true, reason = reason})
end
