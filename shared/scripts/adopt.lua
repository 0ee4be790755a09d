-- adopt: record a finished job that ran directly on an executor (hybrid mode, while Redis was
-- away) as if it had gone through the queue, so Status, ListJobs and retention find it.
--
-- KEYS[1] job hash  KEYS[2] tenant jobs zset  KEYS[3] retention zset (completed or failed)
-- KEYS[4] job progress stream  KEYS[5] queue events stream  KEYS[6..] tenant tag zsets
-- ARGV[1] context (JSON, shared.queue.Queue.context): id, job (the whole hash, from
--   shared.codec.job_fields), created (ms: the tenant indexes' score), finished (ms: the
--   retention score, and the time of its terminal event), progress_maxlen, events_maxlen
-- Returns 1, or 0 when the job hash exists already (written before): nothing changes. Its terminal
-- event (completed, failed, timeout, cancelled) goes to the events stream, so WatchEvents and the
-- alerts see the job end.
--
-- Atomic so that the job is in every index, with its terminal progress entry, or in none; and so
-- that a second write (the API retrying after a lost reply) changes nothing.
--- @include common
local ctx = cjson.decode(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
set_fields(KEYS[1], ctx.job)
redis.call('ZADD', KEYS[2], ctx.created, ctx.id)
for i = 6, #KEYS do redis.call('ZADD', KEYS[i], ctx.created, ctx.id) end
redis.call('ZADD', KEYS[3], ctx.finished, ctx.id)
emit_progress(ctx, KEYS[4], KEYS[1], {terminal = '1'})
emit_event(ctx, KEYS[5], ctx.job.state, KEYS[1], {ts = ctx.finished})
return 1
