-- Removes one connection of a user from a channel's presence.
-- KEYS as presence_join.lua; ARGV[1] conn, ARGV[2] user, ARGV[3] live topic
-- (or ""), ARGV[4] the leave push published there on a last leave.
-- Returns {last, node_empty}: last is 1 when it was the user's last
-- connection anywhere (0 also when the connection is not there, or
-- belongs to another user); node_empty is 1 when the node now holds no
-- connection in the channel.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return {0, redis.call('EXISTS', KEYS[1]) == 0 and 1 or 0}
end
redis.call('HDEL', KEYS[1], ARGV[1])
local node_empty = redis.call('EXISTS', KEYS[1]) == 0 and 1 or 0
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) > 0 then
  return {0, node_empty}
end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return {1, node_empty}
