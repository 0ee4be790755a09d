-- submit: create a job and make it runnable, in one atomic step (the steps are submit_job.lua's).
--
-- KEYS[1..] submit_job's keys (submit_job.lua: job hash, lane stream, delayed zset, idempotency key,
--   tenant jobs zset, queue events stream, job progress stream, tenant tag zsets)
-- ARGV[1] context (JSON, shared.queue.Queue.context): submit_job's members (submit_job.lua)
-- Returns {job id, 1 if an earlier submit with the same idempotency key made it else 0}, or
-- {'', -1} when the tenant already has its maximum of queued jobs (nothing is written).
--
-- Atomic because a crash between the hash and the stream entry would leave a job that never
-- runs (or an entry with no job), and because two concurrent submits with one idempotency key
-- must agree on one job.
--- @include submit_job
local ctx = cjson.decode(ARGV[1])
return submit_job(ctx, submit_keys(KEYS, 1))
