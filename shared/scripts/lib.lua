-- Shared functions prepended to the executor scripts (claim, reclaim), after tally.lua. Not a script
-- of its own.

-- claim_entry: take one stream entry for job `id` as a new run by `worker`.
-- Returns the job hash as a flat list with the new fence token, or nil when the job is no
-- longer waiting (cancelled, finished, deleted): then the entry is acked and deleted here.
local function claim_entry(lane, group, entry_id, id, job_prefix, progress_prefix, events_key,
                           worker, now, progress_maxlen, events_maxlen, from_states, stats)
  local jk = job_prefix .. id
  local state = redis.call('HGET', jk, 'state')
  if not state or not from_states[state] then
    redis.call('XACK', lane, group, entry_id)
    redis.call('XDEL', lane, entry_id)
    return nil
  end
  local fence = redis.call('HINCRBY', jk, 'fence', 1)
  local attempt = redis.call('HINCRBY', jk, 'attempt', 1)
  redis.call('HSET', jk, 'state', 'running', 'started', now, 'worker', worker, 'entry', entry_id,
    'pct', '0', 'cur', '0', 'step', '', 'msg', 'Claimed by ' .. worker, 'ts', now)
  tally_claimed(tally_of(stats, jk), state, now)
  redis.call('XADD', progress_prefix .. id, 'MAXLEN', '~', progress_maxlen, '*', 'state', 'running',
    'pct', '0', 'cur', '0', 'total', redis.call('HGET', jk, 'total') or '0', 'step', '',
    'msg', 'Claimed by ' .. worker, 'ts', now, 'attempt', tostring(attempt))
  redis.call('XADD', events_key, 'MAXLEN', '~', events_maxlen, '*', 'kind', 'active', 'job', id,
    'state', 'running', 'tenant', redis.call('HGET', jk, 'tenant') or '', 'ts', now)
  return redis.call('HGETALL', jk)
end
