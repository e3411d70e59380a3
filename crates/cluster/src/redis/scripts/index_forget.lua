-- Unmarks channels of a node's index, each only if its token is still the
-- one the caller read before it emptied the channel: a token changed since
-- means the node marked the channel again meanwhile, so it stays.
-- KEYS as index_mark.lua; ARGV[1] node, then channel, token pairs.
for i = 2, #ARGV - 1, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
if KEYS[2] and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
end
return 0
