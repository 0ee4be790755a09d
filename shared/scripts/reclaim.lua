-- reclaim: take over the entries of executors that stopped heartbeating (their leases ran out).
--
-- KEYS[1..3] lane streams high, medium, low  KEYS[4] queue events stream  KEYS[5] dead-letter zset
-- KEYS[6] failed retention zset  KEYS[7] delayed zset  KEYS[8] the queue's rate-limit start log (limit.lua)
-- ARGV[1] context (JSON, shared.queue.Queue.context): count (most entries), consumer, worker (id),
--   lease_ms (min idle), max_stalled (stalls a job survives), endings (how a stopped job ends:
--   {cancelled = {message, error}, failed = {message, error}}, the error JSON encoded by shared.codec,
--   '{count}' standing for how often it stalled), now, group, job_prefix, progress_prefix,
--   progress_maxlen, events_maxlen, stats_prefix (tally.lua), run_prefix, run_ttl_ms (run.lua),
--   limit_prefix, rate_max, rate_duration_ms, tenant_rate_max, tenant_rate_duration_ms (limit.lua)
-- A run started again counts against the rate limits like any start: at most the queue's remaining
-- budget of entries is taken over, and an entry whose tenant is over its limit is left where it is
-- (pending, not counted as a stall), to be taken over by a later pass once its lease runs out again.
-- Returns {claimed, deleted, stalled}: claimed = list of {lane index, entry id, job hash list} to
-- run again; deleted = how many pending ids XAUTOCLAIM reported as deleted from the stream;
-- stalled = job ids failed because they stalled more than the max stalled count.
--
-- Atomic so that a stalled entry moves to exactly one new owner with a new fence token, and a
-- job that keeps stalling fails (and is dead-lettered) exactly once.
--- @include tally
--- @include limit
--- @include claim_entry
--- @include run
--- @include common
local ctx = cjson.decode(ARGV[1])
local limit = limit_clock(ctx, KEYS[8])
local claimed, stalled, deleted = {}, {}, 0
local left = math.min(tonumber(ctx.count), (limit_queue(limit)))
local resumable = {running = true, pending = true}

-- The job in hash `jk` (state `from`) ends for good as `verdict` ('cancelled': a cancel was asked;
-- 'failed': it stalled `count` times), and its entry `entry_id` of `lane` goes.
local function stop(lane, entry_id, id, jk, from, verdict, count)
  local now = ctx.now
  local ending = ctx.endings[verdict]
  local msg = (string.gsub(ending.message, '{count}', count))
  local err = (string.gsub(ending.error, '{count}', count))
  redis.call('HINCRBY', jk, 'fence', 1)
  redis.call('HSET', jk, 'state', verdict, 'finished', now, 'msg', msg, 'ts', now, 'error', err)
  redis.call('ZADD', KEYS[6], now, id)
  local figures = tally_of(ctx.stats_prefix, jk)
  tally_move(figures, from, verdict, now)
  tally_ended(figures, verdict, now, nil)  -- how long it really worked is not known
  if verdict == 'failed' then
    redis.call('HSET', jk, 'dlq_reason', 'stalled', 'dlq_at', now)
    if redis.call('ZADD', KEYS[5], now, id) == 1 then tally_dead(figures, 1) end
    stalled[#stalled + 1] = id
  end
  ack_entry(ctx, lane, entry_id)
  run_note(ctx, jk, KEYS[7])
  emit_progress(ctx, ctx.progress_prefix .. id, jk, {step = '', terminal = '1'})
  emit_event(ctx, KEYS[4], verdict == 'failed' and 'stalled' or 'cancelled', jk)
  if verdict == 'failed' then emit_event(ctx, KEYS[4], 'dead_lettered', jk) end
end

-- A lease counts only while Redis is up. Right after Redis (re)started, every entry looks idle since
-- before it went down, though its executor may have run on and be about to record the run's end:
-- until Redis has been up for a lease, nothing is taken over, and the holders heartbeat first.
-- (A Redis whose INFO is renamed away answers an error here: then there is no such guard.)
local info = redis.pcall('INFO', 'server')
local uptime_s = type(info) == 'string' and tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
if uptime_s and uptime_s * 1000 < tonumber(ctx.lease_ms) then left = 0 end

for lane = 1, 3 do
  if left <= 0 then break end
  local reply = redis.call('XAUTOCLAIM', KEYS[lane], ctx.group, ctx.consumer, ctx.lease_ms, '0-0', 'COUNT', left)
  -- reply = {next start id, claimed entries, deleted ids (Redis 7+)}
  if reply[3] then deleted = deleted + #reply[3] end
  for _, item in ipairs(reply[2]) do
    local entry = lane_entry(item[2])
    local id = entry.job
    local jk = id and (ctx.job_prefix .. id)
    local cur = jk and redis.call('HMGET', jk, 'state', 'cancel') or {}
    if not cur[1] or not resumable[cur[1]] then
      ack_entry(ctx, KEYS[lane], item[1])
    elseif cur[2] ~= '1' and limit_tenant(limit, entry.tenant or '', 0) <= 0 then
      -- over its tenant's rate limit: left in the pending entries list for a later pass
    else
      local count = redis.call('HINCRBY', jk, 'stalled', 1)
      if cur[2] == '1' then
        stop(KEYS[lane], item[1], id, jk, cur[1], 'cancelled', count)
      elseif count > tonumber(ctx.max_stalled) then
        stop(KEYS[lane], item[1], id, jk, cur[1], 'failed', count)
      else
        emit_event(ctx, KEYS[4], 'stalled', jk, {state = 'running'})
        local job = claim_entry(ctx, KEYS[lane], item[1], id, KEYS[4], resumable, nil, true)
        if job then
          claimed[#claimed + 1] = {lane, item[1], job}
          left = left - 1
        end
      end
    end
  end
end
return {claimed, deleted, stalled}
