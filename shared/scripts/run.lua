-- Runs, included (`--- @include run`) by every script that ends a job for good (finish, cancel,
-- reclaim). Not a script of its own.
--
-- A job of a run carries the run's id in its hash (`run`). Its end is copied into the run's test
-- hash, which outlives the job's retention, and counted once in the run's `done`; each end also
-- releases the next job the run's max_parallel holds back (a SCHEDULED job in the delayed zset at
-- a far due time, made due now: promote.lua puts it in its lane). When every test has ended the
-- run is finished and its keys expire after the run retention. Keys, all under ctx.run_prefix R:
--   R .. id                      hash  the run (shared.schema.RunField)
--   R .. id .. ':jobs'           list  its job ids, in order
--   R .. id .. ':held'           list  job ids not released yet, in order
--   R .. id .. ':test:' .. job   hash  a test: name, file, its job's tags, and its end as the job recorded it

-- The job in hash `jk` has just ended (completed, failed, timed out, cancelled): tell its run.
-- `delayed` is the queue's delayed zset (a key the calling script declares in its KEYS).
local function run_note(ctx, jk, delayed)
  local job = redis.call('HMGET', jk, 'run', 'id', 'state', 'attempt', 'started', 'finished', 'result', 'error')
  local run = job[1]
  if not run or run == '' then return end
  local rk = ctx.run_prefix .. run
  local tk = rk .. ':test:' .. job[2]
  redis.call('HSET', tk, 'state', job[3] or '', 'attempt', job[4] or '0', 'started', job[5] or '0',
    'finished', job[6] or '0', 'result', job[7] or '', 'error', job[8] or '')
  if redis.call('HSETNX', tk, 'ended', '1') == 0 then return end  -- ended before (a rerun): counted
  local done = redis.call('HINCRBY', rk, 'done', 1)
  local next_id = redis.call('LPOP', rk .. ':held')
  if next_id then
    redis.call('ZADD', delayed, ctx.now, next_id)
    redis.call('HSET', ctx.job_prefix .. next_id, 'due', ctx.now)
  end
  local run_hash = redis.call('HMGET', rk, 'total', 'state')
  if done >= tonumber(run_hash[1] or '0') then
    if run_hash[2] ~= 'cancelled' then redis.call('HSET', rk, 'state', 'finished') end
    redis.call('HSET', rk, 'finished', ctx.now)
    local ttl = tonumber(ctx.run_ttl_ms)
    for _, id in ipairs(redis.call('LRANGE', rk .. ':jobs', 0, -1)) do
      redis.call('PEXPIRE', rk .. ':test:' .. id, ttl)
    end
    redis.call('PEXPIRE', rk, ttl)
    redis.call('PEXPIRE', rk .. ':jobs', ttl)
    redis.call('DEL', rk .. ':held')
  end
end
