-- Forgets channels a removed node held; forgets the node when none is left.
-- KEYS[1] nodes with counts (SET), KEYS[2] the node's channels (SET)
-- ARGV[1] node, ARGV[2..] channels already cleaned up
for i = 2, #ARGV do
  redis.call('SREM', KEYS[2], ARGV[i])
end
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[1])
end
return 0
