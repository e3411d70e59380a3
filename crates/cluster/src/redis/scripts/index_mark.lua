-- Marks a channel in a node's channel index with a fresh token.
-- KEYS[1] the node's index (HASH channel -> token)
-- KEYS[2] optional: the nodes that have an index (SET)
-- ARGV[1] channel, ARGV[2] token, ARGV[3] node
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if KEYS[2] then
  redis.call('SADD', KEYS[2], ARGV[3])
end
return 0
