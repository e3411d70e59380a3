-- Removes every connection one node held in a channel.
-- KEYS as presence_join.lua.
-- Returns the member records of the users whose last connection that was.
-- A second call finds the node's conns gone and returns nothing.
local gone = {}
for _, user in ipairs(redis.call('HVALS', KEYS[1])) do
  if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
    redis.call('HDEL', KEYS[2], user)
    local record = redis.call('HGET', KEYS[3], user)
    if record then
      redis.call('HDEL', KEYS[3], user)
      gone[#gone + 1] = record
    end
  end
end
redis.call('DEL', KEYS[1])
return gone
