-- claim: read up to N new entries from the lanes, high before medium before low, and claim
-- each one's job (state RUNNING, new fence token) in the same step, within the rate limits.
--
-- KEYS[1..3] lane streams high, medium, low   KEYS[4] paused flag   KEYS[5] queue events stream
-- KEYS[6] the queue's rate-limit start log (limit.lua)
-- ARGV[1] context (JSON, shared.queue.Queue.context): count (most entries), consumer, worker (id),
--   now, group, job_prefix, progress_prefix, progress_maxlen, events_maxlen, stats_prefix
--   (tally.lua), fair_prefix, tenant_window, tenant_max_running (fair.lua; a window of 0 = off),
--   limit_prefix, rate_max, rate_duration_ms, tenant_rate_max, tenant_rate_duration_ms (limit.lua)
-- Returns {claimed, last_ids, paused, wait_ms}: claimed = list of {lane index (1-3), entry id, job
-- hash list}; last_ids = the newest entry id of each lane ('0-0' if empty) when every lane was read
-- to its end (fewer than N were claimed, or none) and the queue's start budget is not spent, so the
-- caller can block on XREAD from exactly there without missing an entry added meanwhile; paused = 1
-- when the queue is paused (then nothing is read); wait_ms = how long until a start held back by a
-- rate limit is allowed (0 = none is held): with no last_ids the queue's own limit is spent and
-- nothing starts before then, else a tenant's held jobs may start then (block on the lanes no longer
-- than that).
--
-- The queue-wide limit takes at most its remaining budget of entries. An entry whose tenant is over
-- its own limit, and whose job still waits, is not started: its lane entry is acked and deleted and its job (still PENDING)
-- goes back to the head of its tenant's backlog (fair.lua), so other tenants' entries behind it
-- start meanwhile and nothing is left in the pending entries list.
--
-- Atomic so that an entry is never delivered without its job being marked RUNNING under a
-- fresh fence token (a crash between the two would leave a job RUNNING that nobody runs), and so
-- that two executors claiming at once never both spend a limiter's last start.
--- @include tally
--- @include limit
--- @include fair
--- @include claim_entry
local ctx = cjson.decode(ARGV[1])
local limit = limit_clock(ctx, KEYS[6])
local claimed = {}
local paused = redis.call('EXISTS', KEYS[4]) == 1
local left = math.min(tonumber(ctx.count), (limit_queue(limit)))
local waiting = {pending = true}
local fair = fair_context(ctx, false)
local wake = nil  -- ms until a tenant's limiter lets one of its held jobs start
local figures = tally_batch()  -- the starts, counted once per figures hash and field at the end
if not paused then
  for lane = 1, 3 do
    if fair then wake = limit_sooner(wake, fair_pump(fair, lane, KEYS[lane])) end
    local held, held_tenants = {}, {}
    while left > 0 do
      local reply = redis.call('XREADGROUP', 'GROUP', ctx.group, ctx.consumer, 'COUNT', left, 'STREAMS', KEYS[lane], '>')
      if not reply then break end
      local entries = reply[1][2]
      if #entries == 0 then break end
      for _, item in ipairs(entries) do
        local entry = lane_entry(item[2])
        local job = nil
        if not entry.job then
          ack_entry(ctx, KEYS[lane], item[1])
        elseif fair and fair_holds(fair, entry) then
          ack_entry(ctx, KEYS[lane], item[1])
          held_tenants[#held + 1] = entry.tenant
          held[#held + 1] = entry.job
        else
          job = claim_entry(ctx, KEYS[lane], item[1], entry.job, KEYS[5], waiting, figures)
        end
        if job then
          claimed[#claimed + 1] = {lane, item[1], job}
          left = left - 1
        end
        if fair then wake = limit_sooner(wake, fair_taken(fair, lane, KEYS[lane], entry)) end
      end
    end
    if #held > 0 then wake = limit_sooner(wake, fair_hold(fair, lane, KEYS[lane], held, held_tenants)) end
  end
end
tally_apply(figures)
local last = {}
local budget, wait = limit_queue(limit)
if budget <= 0 and not paused then
  wake = wait  -- the queue's own limit: nothing starts before then, whatever arrives
elseif #claimed == 0 or left > 0 then
  for lane = 1, 3 do
    local top = redis.call('XREVRANGE', KEYS[lane], '+', '-', 'COUNT', 1)
    last[lane] = top[1] and top[1][1] or '0-0'
  end
end
return {claimed, last, paused and 1 or 0, wake or 0}
