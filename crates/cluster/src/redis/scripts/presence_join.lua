-- Adds one connection of a user to a channel's presence.
-- KEYS[1] conns of this node in the channel (HASH conn -> user)
-- KEYS[2] users of the channel (HASH user -> connection count)
-- KEYS[3] member records of the channel (HASH user -> "<user as sent>\n<info>")
-- ARGV[1] conn, ARGV[2] user, ARGV[3] member record, ARGV[4] live topic (or ""),
-- ARGV[5] the join push published there on a first join
-- Returns 1 when this is the user's first connection anywhere, else 0.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) > 1 then
  return 0
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 1
