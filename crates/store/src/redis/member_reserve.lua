-- Step 1 of a member add, on the user's side (`members.rs`): index the
-- channel unless that would exceed max_channels.
-- KEYS[1]: fanfare:{user:<user>}:channels (ZSET, every score 0).
-- ARGV[1]: the channel, ARGV[2]: max_channels.
-- Reply: 0 already indexed, 1 reserved now, -1 refused (nothing changed).
local channels = KEYS[1]
if redis.call('ZSCORE', channels, ARGV[1]) then return 0 end
if redis.call('ZCARD', channels) >= tonumber(ARGV[2]) then return -1 end
redis.call('ZADD', channels, 0, ARGV[1])
return 1
