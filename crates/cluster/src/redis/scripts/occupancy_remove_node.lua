-- Drops one node's subscription count of a channel.
-- KEYS[1] the channel's counts (HASH node -> count); ARGV[1] node.
-- Returns {total before, total after}, or nil when the node held nothing
-- (so a second caller reports nothing).
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then
  return nil
end
local before = 0
for _, count in ipairs(redis.call('HVALS', KEYS[1])) do
  before = before + tonumber(count)
end
redis.call('HDEL', KEYS[1], ARGV[1])
return {before, before - tonumber(old)}
