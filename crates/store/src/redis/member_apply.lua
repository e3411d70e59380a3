-- Step 3 of a member change, on the user's side (`members.rs`): apply the
-- channel side's state of the pair at its change number, unless a newer
-- number was applied already (last number wins).
-- KEYS[1]: fanfare:{user:<user>}:channels (ZSET), KEYS[2]:
-- fanfare:{user:<user>}:channel_seq (HASH channel -> applied number, only
-- for channels indexed as members, so it stays as small as the index).
-- ARGV[1]: the channel, ARGV[2]: the change number, ARGV[3]: 1 member, 0 not.
-- Reply: 1 applied, 0 superseded.
local channels, applied = KEYS[1], KEYS[2]
local seq = tonumber(ARGV[2])
local stored = tonumber(redis.call('HGET', applied, ARGV[1]) or '0')
if seq < stored then return 0 end
if ARGV[3] == '1' then
  redis.call('ZADD', channels, 0, ARGV[1])
  redis.call('HSET', applied, ARGV[1], ARGV[2])
else
  redis.call('ZREM', channels, ARGV[1])
  redis.call('HDEL', applied, ARGV[1])
end
return 1
