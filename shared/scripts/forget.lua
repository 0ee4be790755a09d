-- forget: delete the consumers of a stream's group that hold no entry and have read nothing for a
-- while.
--
-- KEYS: the streams
-- ARGV[1] context (JSON, shared.queue.Queue.context): groups (the group each stream is read
--   through, in KEYS order), idle_ms
-- Returns how many consumers were deleted.
--
-- Every executor process reads the lanes, and every API replica the events stream, under a name of
-- its own, and Redis keeps a group's consumer until it is deleted: without this, every process
-- that ever ran (each restart, scale-down or crash leaves one) would stay in the group for ever. A
-- consumer goes only while it holds no entry (pending 0), checked in the same step as the delete,
-- so no pending entry is ever dropped with it; and only after `idle_ms` without a read. A process
-- still alive whose consumer went (idle, holding nothing) is given a new one by its next read.
local ctx = cjson.decode(ARGV[1])
local idle_ms = tonumber(ctx.idle_ms)
local deleted = 0
for i, stream in ipairs(KEYS) do
  local group = ctx.groups[i]
  local consumers = redis.pcall('XINFO', 'CONSUMERS', stream, group)
  if not consumers.err then  -- no stream or no group yet: nothing to forget
    for _, fields in ipairs(consumers) do
      local c = {}
      for n = 1, #fields, 2 do c[fields[n]] = fields[n + 1] end
      if c.pending == 0 and c.idle >= idle_ms then
        redis.call('XGROUP', 'DELCONSUMER', stream, group, c.name)
        deleted = deleted + 1
      end
    end
  end
end
return deleted
