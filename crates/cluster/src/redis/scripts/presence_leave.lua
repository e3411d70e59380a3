-- Removes one connection of a user from a channel's presence.
-- KEYS as presence_join.lua; ARGV[1] conn, ARGV[2] user.
-- Returns 1 when it was the user's last connection anywhere, else 0
-- (also when the connection is not there, or belongs to another user).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) > 0 then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
