-- claim: read up to N new entries from the lanes, high before medium before low, and claim
-- each one's job (state RUNNING, new fence token) in the same step.
--
-- KEYS[1..3] lane streams high, medium, low   KEYS[4] paused flag   KEYS[5] queue events stream
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] max entries  ARGV[4] now ms  ARGV[5] worker id
-- ARGV[6] job key prefix  ARGV[7] progress key prefix  ARGV[8] progress maxlen  ARGV[9] events maxlen
-- ARGV[10] stats prefix (tally.lua)
-- ARGV[11..13] optional fair share (fair.lua): key prefix, tenant window, tenant max running
-- Returns {claimed, last_ids}: claimed = list of {lane index (1-3), entry id, job hash list};
-- last_ids = the newest entry id of each lane ('0-0' if empty) when nothing was claimed, so the
-- caller can block on XREAD from exactly there without missing an entry added meanwhile.
--
-- Atomic so that an entry is never delivered without its job being marked RUNNING under a
-- fresh fence token: a crash between the two would leave a job RUNNING that nobody runs.
local claimed = {}
local paused = redis.call('EXISTS', KEYS[4]) == 1
local left = tonumber(ARGV[3])
local waiting = {pending = true}
local fair = fair_context(ARGV[11], ARGV[6], ARGV[12] or '0', ARGV[13] or '0')
if not paused then
  for lane = 1, 3 do
    if fair then fair_pump(fair, lane, KEYS[lane]) end
    while left > 0 do
      local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left, 'STREAMS', KEYS[lane], '>')
      if not reply then break end
      local entries = reply[1][2]
      if #entries == 0 then break end
      for _, entry in ipairs(entries) do
        local fields = entry[2]
        local id
        for i = 1, #fields, 2 do if fields[i] == 'job' then id = fields[i + 1] end end
        local job = nil
        if id then
          job = claim_entry(KEYS[lane], ARGV[1], entry[1], id, ARGV[6], ARGV[7], KEYS[5], ARGV[5],
            ARGV[4], ARGV[8], ARGV[9], waiting, ARGV[10])
        else
          redis.call('XACK', KEYS[lane], ARGV[1], entry[1])
          redis.call('XDEL', KEYS[lane], entry[1])
        end
        if job then
          claimed[#claimed + 1] = {lane, entry[1], job}
          left = left - 1
        end
        if fair then fair_taken(fair, lane, KEYS[lane], fields, id) end
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
