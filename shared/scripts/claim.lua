-- claim: read up to N new entries from the lanes, high before medium before low, and claim
-- each one's job (state RUNNING, new fence token) in the same step.
--
-- KEYS[1..3] lane streams high, medium, low   KEYS[4] paused flag   KEYS[5] queue events stream
-- ARGV[1] context (JSON, shared.queue.Queue.context): count (most entries), consumer, worker (id),
--   now, group, job_prefix, progress_prefix, progress_maxlen, events_maxlen, stats_prefix
--   (tally.lua), fair_prefix, tenant_window, tenant_max_running (fair.lua; a window of 0 = off)
-- Returns {claimed, last_ids, paused}: claimed = list of {lane index (1-3), entry id, job hash
-- list}; last_ids = the newest entry id of each lane ('0-0' if empty) when nothing was claimed, so
-- the caller can block on XREAD from exactly there without missing an entry added meanwhile;
-- paused = 1 when the queue is paused (then nothing is read).
--
-- Atomic so that an entry is never delivered without its job being marked RUNNING under a
-- fresh fence token: a crash between the two would leave a job RUNNING that nobody runs.
--- @include tally
--- @include fair
--- @include claim_entry
local ctx = cjson.decode(ARGV[1])
local claimed = {}
local paused = redis.call('EXISTS', KEYS[4]) == 1
local left = tonumber(ctx.count)
local waiting = {pending = true}
local fair = fair_context(ctx, false)
if not paused then
  for lane = 1, 3 do
    if fair then fair_pump(fair, lane, KEYS[lane]) end
    while left > 0 do
      local reply = redis.call('XREADGROUP', 'GROUP', ctx.group, ctx.consumer, 'COUNT', left, 'STREAMS', KEYS[lane], '>')
      if not reply then break end
      local entries = reply[1][2]
      if #entries == 0 then break end
      for _, item in ipairs(entries) do
        local entry = lane_entry(item[2])
        local job = nil
        if entry.job then
          job = claim_entry(ctx, KEYS[lane], item[1], entry.job, KEYS[5], waiting)
        else
          ack_entry(ctx, KEYS[lane], item[1])
        end
        if job then
          claimed[#claimed + 1] = {lane, item[1], job}
          left = left - 1
        end
        if fair then fair_taken(fair, lane, KEYS[lane], entry) end
      end
    end
  end
end
local last = {}
if #claimed == 0 then
  for lane = 1, 3 do
    local top = redis.call('XREVRANGE', KEYS[lane], '+', '-', 'COUNT', 1)
    last[lane] = top[1] and top[1][1] or '0-0'
  end
end
return {claimed, last, paused and 1 or 0}
