-- pause: pause or resume a queue, and tell the queue's watchers once per change.
--
-- KEYS[1] paused flag  KEYS[2] queue events stream
-- ARGV[1] '1' = pause, '0' = resume  ARGV[2] now ms  ARGV[3] events maxlen
-- Returns 1 when the queue's state changed, 0 when it already was paused (or running).
--
-- Atomic so the 'paused' / 'resumed' event is written exactly when the flag changes: two admins
-- pausing at once give one event, and the event stream never says the opposite of the flag.
-- claim.lua reads the flag: a paused queue claims nothing new; running jobs go on to their end.
local paused = redis.call('EXISTS', KEYS[1]) == 1
local want = ARGV[1] == '1'
if paused == want then return 0 end
if want then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', want and 'paused' or 'resumed', 'job', '',
  'state', '', 'tenant', '', 'ts', ARGV[2])
return 1
