-- progress: record a running job's progress, if the caller still holds the job.
--
-- KEYS[1] job hash   KEYS[2] job progress stream   KEYS[3] queue events stream
-- ARGV[1] context (JSON, shared.queue.Queue.context): fence (the run's token), progress (pct,
--   cur, total, step, msg, ts: shared.codec.progress_fields), progress_maxlen, events_maxlen
-- Returns 1; 2 when a cancel was requested for the job (the caller stops it); 0 when the fence
-- is stale or the job is no longer RUNNING (a zombie executor).
--
-- Atomic so a zombie's late progress can never land after another executor took the job over.
--- @include common
local ctx = cjson.decode(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'fence', 'state', 'cancel')
if cur[1] ~= ctx.fence or cur[2] ~= 'running' then return 0 end
local given = ctx.progress
set_fields(KEYS[1], given)
emit_progress(ctx, KEYS[2], KEYS[1])
emit_event(ctx, KEYS[3], 'progress', KEYS[1], {pct = given.pct, msg = given.msg, ts = given.ts})
if cur[3] == '1' then return 2 end
return 1
