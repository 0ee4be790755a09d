-- Fair share within a lane, included (`--- @include fair`) by the scripts that put a job in a lane
-- (submit, promote, release, requeue) or take one out (claim). Not a script of its own.
--
-- A tenant keeps at most `window` entries waiting in a lane stream at a time (and, with a
-- running limit, no more than `max_running` minus what it runs); the rest of its jobs wait in its
-- own backlog list and enter the lane one by one as its entries are claimed. A tenant flooding a
-- lane therefore has at most `window` entries ahead of another tenant's new job, whatever it has
-- queued. With a per-tenant rate limit (limit.lua) a tenant's entries in the lanes also never
-- outnumber the starts its limiter allows now: the rest wait in its backlog until the window of its
-- limiter slides on, and an entry claim finds over the limit anyway is held there again (first).
-- Per-tenant rate limits therefore need fair share on (shared.settings refuses them without it).
-- Keys, all under the fair prefix P (shared.keys.Keys.fair_prefix):
--   P .. 'queued:' .. lane                  hash  tenant -> its entries waiting in the lane stream
--   P .. 'backlog:' .. lane .. ':' .. tenant list  job ids held back, oldest first
--   P .. 'tenants:' .. lane                 set   tenants with a backlog in the lane
--   P .. 'running:' .. tenant               set   job ids claimed for the tenant (pruned lazily; kept
--                                                 only with a running limit, the one reader)
--- @include limit
--- @include common
local FAIR_LANES = {'high', 'medium', 'low'}

-- Fair share as the script's context `ctx` sets it (fair_prefix, job_prefix, tenant_window,
-- tenant_max_running, tenant_max_queued, and limit.lua's members), or nil when it is off (a window of 0). `limit_queued`:
-- a tenant's queued jobs are capped (a new job or a rerun; not a job that was already queued).
-- `ctx.fair_memo` (a table, or nil): what fair_submit found for the jobs before, kept up to date by
-- it, for a script that submits many jobs and nothing else (submit.lua's chunk).
local function fair_context(ctx, limit_queued)
  local window = tonumber(ctx.tenant_window or '0')
  if not ctx.fair_prefix or ctx.fair_prefix == '' or window <= 0 then return nil end
  return {prefix = ctx.fair_prefix, jobs = ctx.job_prefix, window = window, limit = limit_context(ctx),
    max_running = tonumber(ctx.tenant_max_running or '0'),
    max_queued = limit_queued and tonumber(ctx.tenant_max_queued or '0') or 0, memo = ctx.fair_memo}
end

-- How many of the tenant's jobs run now; ids of jobs no longer running are dropped.
local function fair_running(ctx, tenant)
  local key = ctx.prefix .. 'running:' .. tenant
  local n = 0
  for _, id in ipairs(redis.call('SMEMBERS', key)) do
    if redis.call('HGET', ctx.jobs .. id, 'state') == 'running' then n = n + 1 else redis.call('SREM', key, id) end
  end
  return n
end

local function fair_queued(ctx, lane, tenant)
  return tonumber(redis.call('HGET', ctx.prefix .. 'queued:' .. lane, tenant) or '0')
end

-- One of the tenant's counted entries left the lane (claimed, dropped, held or withdrawn).
local function fair_dequeued(ctx, lane, tenant)
  local key = ctx.prefix .. 'queued:' .. lane
  if redis.call('HINCRBY', key, tenant, -1) <= 0 then redis.call('HDEL', key, tenant) end
end

-- Whether one more of the tenant's jobs may enter the lane; when not because of its rate limit alone,
-- also the ms until its limiter lets one more in.
local function fair_has_room(ctx, lane, tenant)
  local queued = fair_queued(ctx, lane, tenant)
  if queued >= ctx.window then return false end
  if ctx.max_running > 0 and queued + fair_running(ctx, tenant) >= ctx.max_running then return false end
  if not ctx.limit then return true end
  local promised = 0  -- its entries in any lane: each is a start its limiter has let through
  for _, name in ipairs(FAIR_LANES) do promised = promised + fair_queued(ctx, name, tenant) end
  local left, wait = limit_tenant(ctx.limit, tenant, promised)
  return left > 0, wait
end

local function fair_enter(ctx, lane, stream, tenant, id, trace)
  enter_lane(stream, ctx.jobs .. id, id, tenant, trace, true)
  redis.call('HINCRBY', ctx.prefix .. 'queued:' .. lane, tenant, 1)
end

-- Move the tenant's held-back jobs into the lane while it has room. Returns the ms until its rate
-- limiter lets the next of them in, when that is what holds them (else nil).
local function fair_fill(ctx, lane, stream, tenant)
  local backlog = ctx.prefix .. 'backlog:' .. lane .. ':' .. tenant
  while true do  -- each turn takes one job off the backlog, or ends
    local room, wait = fair_has_room(ctx, lane, tenant)
    if not room then
      if wait and redis.call('LLEN', backlog) > 0 then return wait end
      return nil
    end
    local id = redis.call('LPOP', backlog)
    if not id then
      redis.call('SREM', ctx.prefix .. 'tenants:' .. lane, tenant)
      return nil
    end
    local cur = redis.call('HMGET', ctx.jobs .. id, 'state', 'trace')
    if cur[1] == 'pending' then fair_enter(ctx, lane, stream, tenant, id, cur[2] or '') end
  end
end

-- Submit: a new pending job enters the lane, or the tenant's backlog when it has no room; `first`
-- puts it at the head of the backlog (a job handed back, which had already reached the lane once).
-- Returns false when the tenant already has `max_queued` jobs waiting in the lanes.
-- With `ctx.memo` (jobs submitted one after another by one script, which takes none out): the
-- tenant's waiting count is read for its first job and counted on from there, and once one of its
-- jobs went to a lane's backlog the next ones go there too (the backlog is not empty any more).
local function fair_submit(ctx, lane, stream, tenant, id, trace, first)
  local backlog = ctx.prefix .. 'backlog:' .. lane .. ':' .. tenant
  local memo = ctx.memo or {}
  if ctx.max_queued > 0 then
    local waiting = memo['waiting:' .. tenant]
    if not waiting then
      waiting = 0
      for _, name in ipairs(FAIR_LANES) do
        waiting = waiting + fair_queued(ctx, name, tenant) + redis.call('LLEN', ctx.prefix .. 'backlog:' .. name .. ':' .. tenant)
      end
    end
    memo['waiting:' .. tenant] = waiting
    if waiting >= ctx.max_queued then return false end
    memo['waiting:' .. tenant] = waiting + 1
  end
  local held = memo['held:' .. lane .. ':' .. tenant]
  if not held and redis.call('LLEN', backlog) == 0 and fair_has_room(ctx, lane, tenant) then
    fair_enter(ctx, lane, stream, tenant, id, trace)
  else
    redis.call(first and 'LPUSH' or 'RPUSH', backlog, id)
    if not held then redis.call('SADD', ctx.prefix .. 'tenants:' .. lane, tenant) end
    memo['held:' .. lane .. ':' .. tenant] = true
  end
  return true
end

-- Claim, before reading a lane: let every backlogged tenant with room into it. Returns the ms until
-- a tenant's rate limiter lets more of its backlog in (nil: none is held by one).
local function fair_pump(ctx, lane_index, stream)
  local lane = FAIR_LANES[lane_index]
  local wake = nil
  for _, tenant in ipairs(redis.call('SMEMBERS', ctx.prefix .. 'tenants:' .. lane)) do
    wake = limit_sooner(wake, fair_fill(ctx, lane, stream, tenant))
  end
  return wake
end

-- Claim, after taking an entry (claimed, dropped or held; its fields by name, common.lua lane_entry):
-- count it off and let the tenant's next job in. Returns fair_fill's wait.
local function fair_taken(ctx, lane_index, stream, entry)
  local lane = FAIR_LANES[lane_index]
  local tenant, id = entry.tenant, entry.job
  if not tenant or tenant == '' then return end
  -- Only fair_running reads the set, and only with a running limit: without one, nothing would
  -- ever prune it, and it would hold every job the tenant ever ran.
  if ctx.max_running > 0 and id and redis.call('HGET', ctx.jobs .. id, 'state') == 'running' then
    redis.call('SADD', ctx.prefix .. 'running:' .. tenant, id)
  end
  if entry.fair then fair_dequeued(ctx, lane, tenant) end
  return fair_fill(ctx, lane, stream, tenant)
end

-- Cancel: the pending job `id` of `tenant` gives up its place in lane `lane` (stream `stream`): its
-- entry there, when `counted` (the entry was found and taken out of the stream, and the tenant's
-- window counted it), else its place in the tenant's backlog (O(length of the backlog)). The tenant's
-- next job takes the room. A place left behind would come alive again when the job is run again
-- (Retry), and the job would then wait in two places.
local function fair_withdraw(ctx, lane, stream, tenant, id, counted)
  if counted then
    fair_dequeued(ctx, lane, tenant)
  else
    redis.call('LREM', ctx.prefix .. 'backlog:' .. lane .. ':' .. tenant, 1, id)
  end
  fair_fill(ctx, lane, stream, tenant)
end

-- Claim: whether the entry must be held back for its tenant's rate limit: its job still waits
-- (PENDING) and the tenant may start no job now (the entries it let into the lanes are promised
-- starts, but this entry is one of them). An entry whose job no longer waits is not held: claim
-- drops it (claim_entry), so that no id of a job that has ended (cancelled, say) reaches a backlog,
-- where it would come alive again were the job run again (Retry), beside the job's new place.
local function fair_holds(ctx, entry)
  if not ctx.limit or not entry.tenant or entry.tenant == '' then return false end
  if limit_tenant(ctx.limit, entry.tenant, 0) > 0 then return false end
  return redis.call('HGET', ctx.jobs .. entry.job, 'state') == 'pending'
end

-- Claim: hand the jobs `ids` (of one lane index, in lane order, their entries taken) back to the heads
-- of their tenants' backlogs, where they wait for their limiters. `tenants`: each id's tenant.
-- Returns the ms until a limiter lets the first of them in again.
local function fair_hold(ctx, lane_index, stream, ids, tenants)
  local lane = FAIR_LANES[lane_index]
  for i = #ids, 1, -1 do
    redis.call('LPUSH', ctx.prefix .. 'backlog:' .. lane .. ':' .. tenants[i], ids[i])
    redis.call('SADD', ctx.prefix .. 'tenants:' .. lane, tenants[i])
  end
  local wake = nil
  for i = 1, #ids do wake = limit_sooner(wake, fair_fill(ctx, lane, stream, tenants[i])) end
  return wake
end
