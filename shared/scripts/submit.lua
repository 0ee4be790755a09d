-- submit: create jobs and make each runnable (or scheduled), in one atomic step (the steps of each
-- job are submit_job.lua's). One call carries one job (Submit) or a chunk of a batch (SubmitBatch),
-- all of one tenant, so all of one shard and slot.
--
-- KEYS   for each job in turn, submit_job's keys (submit_job.lua: job hash, lane stream, delayed
--        zset, idempotency key, tenant jobs zset, queue events stream, job progress stream, tenant
--        tag zsets); how many each job has is in its ARGV group
-- ARGV[1] context (JSON, shared.queue.Queue.context): the members the jobs share (submit_job.lua:
--        tenant, now and the queue's layout and limits), and `fields`: the names of a job hash's
--        fields, in order
-- ARGV[2..] for each job in turn a group: the number of its keys, then id, lane, due,
--        idempotency_ttl, held ('1' or '0'), trace, then n and n strings: with n >= 0 the values of
--        its hash fields, one for each name in `fields`; with n < 0 its fields' names and values in
--        pairs (name, value, name, value, ...: -n strings); n = '=' (no strings follow): the hash of
--        the job before it in this call (given by values), but for the id and trace fields, which
--        are this job's id and trace (a repeated test). As shared.codec.new_job_fields made them.
--        Plain ARGV, not JSON: decoding the definition in Lua would cost more than writing it.
-- Returns, for each job in turn, its job id and 1 if an earlier submit with the same idempotency
-- key made it else 0, or '' and -1 when the tenant already has its maximum of queued jobs (nothing
-- is written for that job); a flat list {id, code, id, code, ...}.
--
-- Atomic because a crash between the hash and the stream entry would leave a job that never
-- runs (or an entry with no job), and because two concurrent submits with one idempotency key
-- must agree on one job. A chunk's jobs are submitted in order, each seeing the ones before it
-- (an idempotency key used twice in a chunk gives the second the first's job).
--- @include submit_job
local shared = cjson.decode(ARGV[1])
local names = shared.fields
local at = {}  -- where each field's value sits in a flat list of `names` and values
for i, name in ipairs(names) do at[name] = 2 * i end
local id_at, trace_at = at.id, at.trace  -- new_job_fields always has both
-- The fields submit_job reads (its `row`), taken from the flat list rather than read back.
local READ = {'priority', 'tenant', 'state', 'attempt', 'pct', 'cur', 'total', 'step', 'msg', 'ts', 'tags'}
shared.figures = tally_batch(shared.now)  -- the chunk's figures: one HINCRBY per hash and field
shared.fair_memo = {}  -- fair share's counts, read for a tenant's first job and counted on (fair.lua)
local each = {__index = shared}
local prev = nil
local out = {}
local key, arg = 1, 2
while arg <= #ARGV do
  local nkeys, n = tonumber(ARGV[arg]), tonumber(ARGV[arg + 7])
  local first = arg + 8
  local flat
  local row = {}
  if not n then  -- '=': the previous job's hash but for its id and trace
    flat = {unpack(prev)}
    flat[id_at] = ARGV[arg + 1]
    flat[trace_at] = ARGV[arg + 6]
    n = 0
  elseif n >= 0 then
    flat = {}
    for i = 1, n do
      flat[2 * i - 1] = names[i]
      flat[2 * i] = ARGV[first + i - 1]
    end
  else
    n = -n
    flat = {unpack(ARGV, first, first + n - 1)}
    for i = 1, n, 2 do row[flat[i]] = flat[i + 1] end
  end
  if not next(row) then  -- the values of `names`: each field where `at` says
    for _, name in ipairs(READ) do row[name] = flat[at[name] or 0] end
  end
  prev = flat
  local ctx = setmetatable({id = ARGV[arg + 1], lane = ARGV[arg + 2], due = ARGV[arg + 3],
    idempotency_ttl = ARGV[arg + 4], held = ARGV[arg + 5] == '1', trace = ARGV[arg + 6], job_flat = flat,
    row = row}, each)
  local made = submit_job(ctx, submit_keys(KEYS, key, key + nkeys - 1))
  out[#out + 1] = made[1]
  out[#out + 1] = made[2]
  key, arg = key + nkeys, first + n
end
tally_apply(shared.figures)
return out
