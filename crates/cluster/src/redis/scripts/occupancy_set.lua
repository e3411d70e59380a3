-- Replaces one node's subscription count of a channel.
-- KEYS[1] the channel's counts (HASH node -> count)
-- ARGV[1] node, ARGV[2] count (0 removes the node's field)
-- Returns {total before, total after}.
local before = 0
for _, count in ipairs(redis.call('HVALS', KEYS[1])) do
  before = before + tonumber(count)
end
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or 0)
local new = tonumber(ARGV[2])
if new == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return {before, before - old + new}
