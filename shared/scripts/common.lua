-- The writes every script repeats, written once; included (`--- @include common`), not a script of
-- its own. A job's progress entry, a queue event, a lane entry, the ack of one, and the job hash
-- fields Python hands over. Field names are those of shared/schema.py (tests/shared/test_schema.py
-- holds every script to them).
--
-- `ctx` is the script's context (ARGV[1], decoded): the functions read `now`, `group`,
-- `progress_maxlen` and `events_maxlen` from it.

-- Set the fields of table `fields` (name -> value, as shared.codec encoded them) in hash `key`.
local function set_fields(key, fields)
  local flat = {}
  for name, value in pairs(fields) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  if #flat > 0 then redis.call('HSET', key, unpack(flat)) end
end

-- Append an entry to `key`, a job's progress stream, from `job` = {state, attempt, pct, cur, total,
-- step, msg, ts} (as its hash holds them; nil = unset) except where `override` (field -> value) says
-- otherwise. `terminal = '1'` marks the run's last entry: its followers stop there.
local function progress_entry(ctx, key, job, override)
  local o = override or {}
  redis.call('XADD', key, 'MAXLEN', '~', ctx.progress_maxlen, '*', 'state', job[1] or '', 'attempt', job[2] or '0',
    'pct', o.pct or job[3] or '0', 'cur', o.cur or job[4] or '0', 'total', job[5] or '0', 'step', o.step or job[6] or '',
    'msg', o.msg or job[7] or '', 'ts', o.ts or job[8] or '0', 'terminal', o.terminal or '0')
end

-- Append an entry to `key`, the progress stream of the job in hash `jk`: the job's state, attempt
-- and progress as its hash holds them now, except where `override` (field -> value) says
-- otherwise (progress_entry).
local function emit_progress(ctx, key, jk, override)
  local job = redis.call('HMGET', jk, 'state', 'attempt', 'pct', 'cur', 'total', 'step', 'msg', 'ts')
  progress_entry(ctx, key, job, override)
end

-- Append an event of `kind` to `key`, the queue's events stream, about the job `job` = {id, state,
-- tenant, tags} (as its hash holds them; nil = unset; {} = about the queue itself). `extra` (field ->
-- value): the state to report instead of the job's, the event's time instead of `now`, and a
-- progress event's pct and msg.
local function event_entry(ctx, key, kind, job, extra)
  local e = extra or {}
  local id, state, tenant, tags, ts = job[1] or '', e.state or job[2] or '', job[3] or '', job[4] or '[]', e.ts or ctx.now
  if e.pct then
    redis.call('XADD', key, 'MAXLEN', '~', ctx.events_maxlen, '*', 'kind', kind, 'job', id, 'state', state,
      'tenant', tenant, 'ts', ts, 'tags', tags, 'pct', e.pct, 'msg', e.msg or '')
  else
    redis.call('XADD', key, 'MAXLEN', '~', ctx.events_maxlen, '*', 'kind', kind, 'job', id, 'state', state,
      'tenant', tenant, 'ts', ts, 'tags', tags)
  end
end

-- Append an event of `kind` to `key`, the queue's events stream, about the job in hash `jk` (nil:
-- about the queue itself): the job's id, state, tenant and tags as its hash holds them now, so
-- every event carries its job's tags (event_entry; `extra` as there).
local function emit_event(ctx, key, kind, jk, extra)
  local job = jk and redis.call('HMGET', jk, 'id', 'state', 'tenant', 'tags') or {}
  event_entry(ctx, key, kind, job, extra)
end

-- Add job `id` (hash `jk`) to lane stream `lane`, where an executor claims it; `counted` marks an
-- entry its tenant's fair-share window counts (fair.lua). The job's `entry` names the new entry, so
-- that a cancel finds the place the job waits in (cancel.lua).
local function enter_lane(lane, jk, id, tenant, trace, counted)
  local entry_id
  if counted then
    entry_id = redis.call('XADD', lane, '*', 'job', id, 'tenant', tenant, 'trace', trace, 'fair', '1')
  else
    entry_id = redis.call('XADD', lane, '*', 'job', id, 'tenant', tenant, 'trace', trace)
  end
  redis.call('HSET', jk, 'entry', entry_id)
end

-- A lane entry's fields (the flat list XREADGROUP and XAUTOCLAIM give, or nil) by name.
local function lane_entry(fields)
  local entry = {}
  for i = 1, #(fields or {}), 2 do entry[fields[i]] = fields[i + 1] end
  return entry
end

-- Ack entry `entry_id` of lane stream `lane` for the executors' group, and delete it: an entry
-- that is done with (its run ended, or its job no longer waits) leaves the stream at once.
local function ack_entry(ctx, lane, entry_id)
  redis.call('XACK', lane, ctx.group, entry_id)
  redis.call('XDEL', lane, entry_id)
end

-- Entries to ack and delete at the end of a script that ends many (ack_entry, batched): one XACK and
-- one XDEL per lane stream. Lane entries end oldest first, and each XDEL of a stream's first entry
-- walks the deleted entries before it to find the next; one XDEL a call walks them once.
local function ack_batch()
  return {order = {}, ids = {}}
end

local function ack_later(batch, lane, entry_id)
  local ids = batch.ids[lane]
  if not ids then
    ids = {}
    batch.ids[lane] = ids
    batch.order[#batch.order + 1] = lane
  end
  ids[#ids + 1] = entry_id
end

local function ack_apply(ctx, batch)
  for _, lane in ipairs(batch.order) do
    local ids = batch.ids[lane]
    redis.call('XACK', lane, ctx.group, unpack(ids))
    redis.call('XDEL', lane, unpack(ids))
  end
end
