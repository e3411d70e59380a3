-- Removes a node at once, and releases its claim (its claimer has cleaned
-- up after it). KEYS as registry_heartbeat.lua; ARGV[1] node.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 0
