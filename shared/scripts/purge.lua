-- purge: take jobs out of the dead-letter set (PurgeDeadLetters). Their records stay until
-- retention removes them; they are no longer dead letters.
--
-- KEYS[1] dead-letter zset  KEYS[2..] the job hash of each id, in order
-- ARGV[1] context (JSON, shared.queue.Queue.context): ids (the job ids), stats_prefix (tally.lua)
-- Returns how many of the ids were still dead letters (and are not any more).
--
-- Atomic so the dead-letter figures (tally.lua) drop exactly when a job leaves the set, even
-- when a requeue of the same job races the purge.
--- @include tally
local ctx = cjson.decode(ARGV[1])
local removed = 0
for i, id in ipairs(ctx.ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    tally_dead(tally_of(ctx.stats_prefix, KEYS[1 + i]), -1)
    removed = removed + 1
  end
end
return removed
