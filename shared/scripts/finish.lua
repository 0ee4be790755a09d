-- finish: end a run — complete, fail, time out, cancel, or schedule a retry — and ack its entry.
--
-- KEYS[1] job hash  KEYS[2] lane stream  KEYS[3] job progress stream  KEYS[4] queue events stream
-- KEYS[5] retention zset (completed or failed)  KEYS[6] delayed zset  KEYS[7] dead-letter zset
-- ARGV[1] context (JSON, shared.queue.Queue.context): fence (the run's token), entry (its lane
--   entry id), state (completed | failed | timeout | cancelled | scheduled), progress (the final
--   pct, cur, total, step, msg, ts), result and error (JSON encoded by shared.codec, '' = none),
--   due (ms, scheduled only), dead_letter_reason ('' = not dead-lettered), execution_ms, now,
--   group, progress_maxlen, events_maxlen, stats_prefix (tally.lua), run_prefix,
--   run_ttl_ms (run.lua)
-- Returns 1, or 0 when the fence is stale (another executor owns the job now): nothing changes.
--
-- The run's end is counted in the job's lane and tenant figures (tally.lua) in the same step.
--
-- Atomic so that the result, the ack and delete of the entry, the retention entry and the events
-- happen together: a crash before it redelivers the entry; after it, the job is done exactly once.
-- The dead-letter entry is written in the same step, before the ack.
--- @include tally
--- @include run
--- @include common
local ctx = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'fence', 'state', 'id')
if cur[1] ~= ctx.fence or cur[2] ~= 'running' then return 0 end
local state, now, id = ctx.state, ctx.now, cur[3]
local dead = ctx.dead_letter_reason ~= ''
local figures = tally_of(ctx.stats_prefix, KEYS[1])
redis.call('HSET', KEYS[1], 'state', state)
set_fields(KEYS[1], ctx.progress)
if ctx.result ~= '' then redis.call('HSET', KEYS[1], 'result', ctx.result) end
if ctx.error ~= '' then redis.call('HSET', KEYS[1], 'error', ctx.error) end
local kind
if state == 'scheduled' then
  redis.call('HSET', KEYS[1], 'due', ctx.due)
  redis.call('ZADD', KEYS[6], ctx.due, id)
  kind = 'retrying'
else
  redis.call('HSET', KEYS[1], 'finished', now)
  redis.call('ZADD', KEYS[5], now, id)
  if dead then
    redis.call('HSET', KEYS[1], 'dlq_reason', ctx.dead_letter_reason, 'dlq_at', now)
    if redis.call('ZADD', KEYS[7], now, id) == 1 then tally_dead(figures, 1) end
  end
  tally_ended(figures, state, now, tonumber(ctx.execution_ms))
  run_note(ctx, KEYS[1], KEYS[6])
  kind = state
end
tally_move(figures, 'running', state, now)
ack_entry(ctx, KEYS[2], ctx.entry)
emit_progress(ctx, KEYS[3], KEYS[1], {terminal = state ~= 'scheduled' and '1' or '0'})
emit_event(ctx, KEYS[4], kind, KEYS[1])
if dead then emit_event(ctx, KEYS[4], 'dead_lettered', KEYS[1]) end
return 1
