-- promote: move delayed jobs that are due (retries after their backoff, submits with delay_ms)
-- into their priority lane.
--
-- KEYS[1] delayed zset  KEYS[2..4] lane streams high, medium, low  KEYS[5] queue events stream
-- ARGV[1] context (JSON, shared.queue.Queue.context): limit (most jobs), now, job_prefix,
--   progress_prefix, progress_maxlen, events_maxlen, stats_prefix (tally.lua), fair_prefix,
--   tenant_window, tenant_max_running (fair.lua; a window of 0 = off), limit_prefix,
--   tenant_rate_max, tenant_rate_duration_ms (limit.lua, through fair.lua)
-- With fair share a promoted job enters its lane or, past its tenant's window, the tenant's backlog.
-- Returns how many jobs were promoted.
--
-- Atomic so that a job leaves the delayed set exactly when its stream entry exists: several
-- executors run this concurrently and each due job must be promoted once.
--- @include tally
--- @include fair
--- @include common
local ctx = cjson.decode(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ctx.now, 'LIMIT', 0, tonumber(ctx.limit))
local lanes = {high = KEYS[2], medium = KEYS[3], low = KEYS[4]}
local moved = 0
local fair = fair_context(ctx, false)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local jk = ctx.job_prefix .. id
  local cur = redis.call('HMGET', jk, 'state', 'priority', 'tenant', 'trace')
  if cur[1] == 'scheduled' then
    local lane, tenant, trace = cur[2], cur[3] or '', cur[4] or ''
    redis.call('HSET', jk, 'state', 'pending', 'due', '0')
    tally_move(tally_of(ctx.stats_prefix, jk), 'scheduled', 'pending', ctx.now)
    if fair and lanes[lane] then
      fair_submit(fair, lane, lanes[lane], tenant, id, trace)
    else
      enter_lane(lanes[lane] or KEYS[3], jk, id, tenant, trace)
    end
    -- The hash keeps the failed attempt's progress for Status; its stream starts waiting afresh.
    emit_progress(ctx, ctx.progress_prefix .. id, jk,
      {pct = '0', cur = '0', step = '', msg = 'Waiting for an executor', ts = ctx.now})
    emit_event(ctx, KEYS[5], 'waiting', jk)
    moved = moved + 1
  end
end
return moved
