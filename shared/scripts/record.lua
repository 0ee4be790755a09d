-- record: write what running jobs report — progress, and the end of a run — many runs in one call.
--
-- KEYS[1] queue events stream  KEYS[2] delayed zset  KEYS[3] dead-letter zset  KEYS[4] completed
--   zset  KEYS[5] failed zset (the retention zsets); then three keys per op, in order: the job
--   hash, its lane stream and its progress stream (op i: KEYS[3 + 3i], KEYS[4 + 3i], KEYS[5 + 3i])
-- ARGV[1] context (JSON, shared.queue.Queue.context): ops, a list of one run's write each:
--   fence (the run's token) and progress (the pct, cur, total, step, msg, ts: shared.codec.
--   progress_fields); an end of a run also has state (completed | failed | timeout | cancelled |
--   scheduled), entry (its lane entry id), result and error (JSON encoded by shared.codec, '' =
--   none), due (ms, scheduled only), dead_letter_reason ('' = not dead-lettered) and execution_ms.
--   Also now, group, progress_maxlen, events_maxlen, stats_prefix (tally.lua), run_prefix,
--   run_ttl_ms (run.lua)
-- Returns one status per op, in order. Progress: 1; 2 when a cancel was requested for the job (the
-- caller stops it); 0 when the fence is stale or the job is no longer RUNNING (a zombie executor).
-- An end: 1, or 0 when the fence is stale (another executor owns the job now): nothing changes.
--
-- Each op checks its own run's fence and changes nothing when it is stale, whatever the others do.
-- The call is atomic, so each op is too: a zombie's late progress never lands after another
-- executor took the job over; an end writes the result, acks and deletes the lane entry, counts
-- the end in the job's lane and tenant figures (tally.lua), adds the retention (or delayed, and
-- dead-letter) entry and the events together: a crash before it redelivers the entry; after it,
-- the job is done exactly once.
--- @include tally
--- @include run
--- @include common
local ctx = cjson.decode(ARGV[1])
local EVENTS, DELAYED, DLQ, COMPLETED, FAILED = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- The ends' figures, written once per hash and field after the last op (tally.lua).
local FIGURES = tally_batch()
-- The ends' lane entries, acked and deleted together after the last op (common.lua).
local ACKS = ack_batch()

-- The job hash fields every op reads, read once a call for each job: a progress op changes none of
-- them, so the ops after it see what it saw; an end changes the state and forgets what was read.
local READ = {}
local function read(jk)
  local cur = READ[jk]
  if not cur then
    cur = redis.call('HMGET', jk, 'fence', 'state', 'cancel', 'attempt', 'id', 'tenant', 'tags', 'priority', 'run')
    READ[jk] = cur
  end
  return cur
end

-- superseded[i]: the next op of op i's job in this call carries the same fence, so it passes when op
-- i does and writes every progress field again (an op's progress fields are always the same set).
local superseded, next_fence = {}, {}
for i = #ctx.ops, 1, -1 do
  local jk, op = KEYS[3 + 3 * i], ctx.ops[i]
  superseded[i] = next_fence[jk] == op.fence
  next_fence[jk] = op.fence
end

local function progress(i, op, jk, pk)
  local cur = read(jk)
  if cur[1] ~= op.fence or cur[2] ~= 'running' then return 0 end
  local p = op.progress
  if not superseded[i] then set_fields(jk, p) end
  progress_entry(ctx, pk, {cur[2], cur[4], p.pct, p.cur, p.total, p.step, p.msg, p.ts})
  event_entry(ctx, EVENTS, 'progress', {cur[5], cur[2], cur[6], cur[7]}, {pct = p.pct, msg = p.msg, ts = p.ts})
  if cur[3] == '1' then return 2 end
  return 1
end

local function finish(op, jk, lane, pk)
  local cur = read(jk)
  if cur[1] ~= op.fence or cur[2] ~= 'running' then return 0 end
  READ[jk] = nil
  local state, now, id = op.state, ctx.now, cur[5]
  local dead = op.dead_letter_reason ~= ''
  local figures = tally_keys(ctx.stats_prefix, cur[8], cur[6])
  local p = op.progress
  -- The job's fields, written in one HSET: the final progress, the state and what the end adds.
  local fields = {state = state}
  for name, value in pairs(p) do fields[name] = value end
  if op.result ~= '' then fields.result = op.result end
  if op.error ~= '' then fields.error = op.error end
  local kind
  if state == 'scheduled' then
    fields.due = op.due
    set_fields(jk, fields)
    redis.call('ZADD', DELAYED, op.due, id)
    kind = 'retrying'
  else
    fields.finished = now
    if dead then
      fields.dlq_reason = op.dead_letter_reason
      fields.dlq_at = now
    end
    set_fields(jk, fields)
    redis.call('ZADD', state == 'completed' and COMPLETED or FAILED, now, id)
    if dead and redis.call('ZADD', DLQ, now, id) == 1 then tally_dead(figures, 1, FIGURES) end
    tally_ended(figures, state, now, tonumber(op.execution_ms), FIGURES)
    if cur[9] and cur[9] ~= '' then run_note(ctx, jk, DELAYED) end
    kind = state
  end
  tally_move(figures, 'running', state, now, FIGURES)
  ack_later(ACKS, lane, op.entry)
  progress_entry(ctx, pk, {state, cur[4], p.pct, p.cur, p.total, p.step, p.msg, p.ts},
    {terminal = state ~= 'scheduled' and '1' or '0'})
  local job = {id, state, cur[6], cur[7]}
  event_entry(ctx, EVENTS, kind, job)
  if dead then event_entry(ctx, EVENTS, 'dead_lettered', job) end
  return 1
end

local statuses = {}
for i, op in ipairs(ctx.ops) do
  local jk, lane, pk = KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i]
  if op.state then
    statuses[i] = finish(op, jk, lane, pk)
  else
    statuses[i] = progress(i, op, jk, pk)
  end
end
tally_apply(FIGURES)
ack_apply(ctx, ACKS)
return statuses
