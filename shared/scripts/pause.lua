-- pause: pause or resume a queue, and tell the queue's watchers once per change.
--
-- KEYS[1] paused flag  KEYS[2] queue events stream
-- ARGV[1] context (JSON, shared.queue.Queue.context): pause (true = pause, false = resume), now,
--   events_maxlen
-- Returns 1 when the queue's state changed, 0 when it already was paused (or running).
--
-- Atomic so the 'paused' / 'resumed' event is written exactly when the flag changes: two admins
-- pausing at once give one event, and the event stream never says the opposite of the flag.
-- claim.lua reads the flag: a paused queue claims nothing new; running jobs go on to their end.
--- @include common
local ctx = cjson.decode(ARGV[1])
local paused = redis.call('EXISTS', KEYS[1]) == 1
if paused == ctx.pause then return 0 end
if ctx.pause then
  redis.call('SET', KEYS[1], ctx.now)
else
  redis.call('DEL', KEYS[1])
end
emit_event(ctx, KEYS[2], ctx.pause and 'paused' or 'resumed')
return 1
