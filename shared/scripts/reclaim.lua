-- reclaim: take over the entries of executors that stopped heartbeating (their leases ran out).
--
-- KEYS[1..3] lane streams high, medium, low  KEYS[4] queue events stream  KEYS[5] dead-letter zset
-- KEYS[6] failed retention zset
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] max entries  ARGV[4] now ms  ARGV[5] worker id
-- ARGV[6] job key prefix  ARGV[7] progress key prefix  ARGV[8] progress maxlen  ARGV[9] events maxlen
-- ARGV[10] stats prefix (tally.lua)  ARGV[11] lease ms (min idle)  ARGV[12] max stalled count
-- Returns {claimed, deleted, stalled}: claimed = list of {lane index, entry id, job hash list} to
-- run again; deleted = how many pending ids XAUTOCLAIM reported as deleted from the stream;
-- stalled = job ids failed because they stalled more than the max stalled count.
--
-- Atomic so that a stalled entry moves to exactly one new owner with a new fence token, and a
-- job that keeps stalling fails (and is dead-lettered) exactly once.
local claimed, stalled, deleted = {}, {}, 0
local left = tonumber(ARGV[3])
local resumable = {running = true, pending = true}
for lane = 1, 3 do
  if left <= 0 then break end
  local reply = redis.call('XAUTOCLAIM', KEYS[lane], ARGV[1], ARGV[2], ARGV[11], '0-0', 'COUNT', left)
  -- reply = {next start id, claimed entries, deleted ids (Redis 7+)}
  if reply[3] then deleted = deleted + #reply[3] end
  for _, entry in ipairs(reply[2]) do
    local fields = entry[2]
    local id
    if fields then
      for i = 1, #fields, 2 do if fields[i] == 'job' then id = fields[i + 1] end end
    end
    local jk = id and (ARGV[6] .. id)
    local cur = jk and redis.call('HMGET', jk, 'state', 'stalled', 'cancel', 'tenant', 'attempt', 'total') or {}
    if not cur[1] or not resumable[cur[1]] then
      redis.call('XACK', KEYS[lane], ARGV[1], entry[1])
      redis.call('XDEL', KEYS[lane], entry[1])
    else
      local count = redis.call('HINCRBY', jk, 'stalled', 1)
      local verdict
      if cur[3] == '1' then verdict = 'cancelled'
      elseif count > tonumber(ARGV[12]) then verdict = 'failed' end
      if verdict then
        local now = ARGV[4]
        local message = verdict == 'cancelled' and 'Cancelled (its executor stopped)' or
          ('Stalled: its executor stopped heartbeating ' .. count .. ' times')
        redis.call('HINCRBY', jk, 'fence', 1)
        redis.call('HSET', jk, 'state', verdict, 'finished', now, 'msg', message, 'ts', now, 'error',
          cjson.encode({category = 'system', message = message, step_index = -1, retryable = false}))
        redis.call('ZADD', KEYS[6], tonumber(now), id)
        local figures = tally_of(ARGV[10], jk)
        tally_move(figures, cur[1], verdict, now)
        tally_ended(figures, verdict, now, nil)  -- how long it really worked is not known
        if verdict == 'failed' then
          redis.call('HSET', jk, 'dlq_reason', 'stalled', 'dlq_at', now)
          if redis.call('ZADD', KEYS[5], tonumber(now), id) == 1 then tally_dead(figures, 1) end
          stalled[#stalled + 1] = id
        end
        redis.call('XACK', KEYS[lane], ARGV[1], entry[1])
        redis.call('XDEL', KEYS[lane], entry[1])
        redis.call('XADD', ARGV[7] .. id, 'MAXLEN', '~', ARGV[8], '*', 'state', verdict, 'pct',
          redis.call('HGET', jk, 'pct') or '0', 'cur', redis.call('HGET', jk, 'cur') or '0', 'total', cur[6] or '0',
          'step', '', 'msg', message, 'ts', now, 'attempt', cur[5] or '0', 'terminal', '1')
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*', 'kind', verdict == 'failed' and 'stalled' or 'cancelled',
          'job', id, 'state', verdict, 'tenant', cur[4] or '', 'ts', now)
        if verdict == 'failed' then
          redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*', 'kind', 'dead_lettered', 'job', id,
            'state', 'failed', 'tenant', cur[4] or '', 'ts', now)
        end
      else
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*', 'kind', 'stalled', 'job', id, 'state', 'running',
          'tenant', cur[4] or '', 'ts', ARGV[4])
        local job = claim_entry(KEYS[lane], ARGV[1], entry[1], id, ARGV[6], ARGV[7], KEYS[4], ARGV[5],
          ARGV[4], ARGV[8], ARGV[9], resumable, ARGV[10])
        if job then
          claimed[#claimed + 1] = {lane, entry[1], job}
          left = left - 1
        end
      end
    end
  end
end
return {claimed, deleted, stalled}
