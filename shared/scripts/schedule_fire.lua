-- schedule_fire: claim one fire time of a schedule and start its run, or start its buffered fire, or
-- run it once now (TriggerSchedule) — the claim, the overlap policy and the submit in one step.
--
-- KEYS[1] schedule hash  KEYS[2] schedules due zset  KEYS[3] schedule runs list  KEYS[4] schedule jobs zset
-- KEYS[5..] submit_job's keys for the job a run would be (submit_job.lua)
-- ARGV[1] context (JSON, shared.queue.Queue.context): op, schedule_id, gen (the generation the caller
--   computed under), fire (ms), run ('1': start a run for the fire; '0': only move past fires dropped
--   as too old), missed (fires dropped before `fire`), missed_last (the last of them), next_due (the due time of the fire after it),
--   poll_ms (how soon to look again at a buffered fire), runs_max (entries kept in the runs list),
--   and submit_job's members (submit_job.lua; `id` is the new job's)
--   op 'fire':    claim `fire` if it is later than the last claimed fire time (compare-and-set:
--                 the last fire only moves forward), then apply the overlap policy
--   op 'drain':   start the fire BUFFER_ONE held back (`fire` is its time) if the previous run ended
--   op 'trigger': start a run now, whatever runs (counts as the schedule's latest run)
--   op 'touch':   only put the schedule back in the due zset at next_due, if nothing moved since
--                 `fire` (its last fire time) was read
--   op 'forget':  take the schedule out of the due zset if it is gone or paused (KEYS[1..4] only)
-- Returns {outcome, job id}: outcome 'started' (job id set), 'skipped', 'buffered', 'advanced'
-- (run '0'), 'busy' (drain: the previous run goes on), 'limited' (the tenant's queue is full: no
-- job, the fire counts as skipped), 'late' (another replica claimed this fire time or a later one),
-- 'stale' (the schedule was paused, or its timing changed, since the caller read it), 'gone'.
--
-- Atomic because this is what makes each fire time run exactly once however many replicas race for
-- it: the loser's compare-and-set fails and writes nothing; and a crash cannot leave a claimed fire
-- without its job, or a job without its claim.
--- @include submit_job
--- @include schedule_run
local ctx = cjson.decode(ARGV[1])
local sk = KEYS[1]
local s = redis.call('HMGET', sk, 'tenant', 'last_fire', 'last_job', 'buffered', 'overlap', 'paused', 'gen')
if ctx.op == 'forget' then
  -- Decided here, not by the caller: a resume between its read and this call must not be undone.
  if not s[1] or s[6] == '1' then redis.call('ZREM', KEYS[2], ctx.schedule_id) end
  return {'gone', ''}
end
if not s[1] then return {'gone', ''} end
local op, now, fire = ctx.op, tonumber(ctx.now), tonumber(ctx.fire)
local buffered = s[4] or ''

local function record(entry) record_run(ctx, KEYS[3], entry) end

local function skip(reason) skip_run(ctx, sk, KEYS[3], ctx.fire, reason) end

-- The previous run (the latest job) has not ended: it exists and is not in a final state.
local function busy()
  if not s[3] or s[3] == '' then return false end
  local state = redis.call('HGET', ctx.job_prefix .. s[3], 'state')
  return state ~= false and state ~= 'completed' and state ~= 'failed' and state ~= 'timeout' and state ~= 'cancelled'
end

local function start(triggered)
  local made = submit_job(ctx, submit_keys(KEYS, 5))
  if tonumber(made[2]) == -1 then
    skip("the tenant's queue is full (SENTINEL_TENANT_MAX_QUEUED)")
    return 'limited'
  end
  redis.call('HSET', sk, 'last_job', ctx.id)
  redis.call('HINCRBY', sk, 'fired', 1)
  redis.call('ZADD', KEYS[4], ctx.now, ctx.id)
  record({fire = triggered and ctx.now or ctx.fire, job = ctx.id, triggered = triggered})
  return 'started'
end

-- The schedule's score in the due zset: its next fire's due time, or sooner while a fire is buffered.
local function reschedule()
  local due = tonumber(ctx.next_due)
  if (redis.call('HGET', sk, 'buffered') or '') ~= '' then due = math.min(due, now + tonumber(ctx.poll_ms)) end
  redis.call('ZADD', KEYS[2], due, ctx.schedule_id)
end

if op == 'trigger' then
  local out = start(true)
  return {out, out == 'started' and ctx.id or ''}
end
if s[6] == '1' or s[7] ~= ctx.gen then return {'stale', ''} end
if op == 'touch' then
  if tonumber(s[2] or '0') ~= fire then return {'late', ''} end
  reschedule()
  return {'advanced', ''}
end
if op == 'drain' then
  if buffered == '' or tonumber(buffered) ~= fire then return {'late', ''} end
  local out = 'busy'
  if not busy() then
    redis.call('HSET', sk, 'buffered', '')
    out = start(false)
  end
  reschedule()
  return {out, out == 'started' and ctx.id or ''}
end

-- op 'fire'
if tonumber(s[2] or '0') >= fire then return {'late', ''} end
redis.call('HSET', sk, 'last_fire', ctx.fire)
local missed = tonumber(ctx.missed)
if missed > 0 then
  redis.call('HINCRBY', sk, 'missed', missed)
  record({fire = ctx.missed_last, skipped = true, reason = missed .. ' fire(s) up to this one missed while no API replica ran (older than catchup_window_ms)'})
end
local out = 'advanced'
if ctx.run == '1' then
  local overlap = s[5] or 'skip'
  if overlap ~= 'allow' and busy() then
    if overlap == 'buffer_one' and buffered == '' then
      redis.call('HSET', sk, 'buffered', ctx.fire)
      out = 'buffered'
    else
      skip(overlap == 'buffer_one' and 'a fire is already buffered behind the unfinished run (overlap BUFFER_ONE)'
        or 'the previous run had not ended (overlap SKIP)')
      out = 'skipped'
    end
  else
    out = start(false)
  end
end
reschedule()
return {out, out == 'started' and ctx.id or ''}
