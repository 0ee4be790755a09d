-- purge: take jobs out of the dead-letter set (PurgeDeadLetters). Their records stay until
-- retention removes them; they are no longer dead letters.
--
-- KEYS[1] dead-letter zset
-- ARGV[1] stats prefix (tally.lua)  ARGV[2] job key prefix  ARGV[3..] job ids
-- Returns how many of the ids were still dead letters (and are not any more).
--
-- Atomic so the dead-letter figures (tally.lua) drop exactly when a job leaves the set, even
-- when a requeue of the same job races the purge.
local removed = 0
for i = 3, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    tally_dead(tally_of(ARGV[1], ARGV[2] .. ARGV[i]), -1)
    removed = removed + 1
  end
end
return removed
