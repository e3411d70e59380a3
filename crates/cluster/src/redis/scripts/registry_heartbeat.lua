-- Registers or renews a node's lease, by the engine's clock.
-- KEYS[1] leases (ZSET node -> expiry ms), KEYS[2] records (HASH node -> "<heartbeat ms> <info JSON>"),
-- KEYS[3] claims (HASH node -> ms until which its claimer is cleaning up after it)
-- ARGV[1] node, ARGV[2] lease ms, ARGV[3] info JSON
-- Returns 1 when the node was registered before, or is claimed and being
-- cleaned up after (then it is not registered: it must wait), else 0.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then
  if tonumber(held) > now then
    return 1
  end
  redis.call('HDEL', KEYS[3], ARGV[1])
end
local was_registered = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], string.format('%.0f', now) .. ' ' .. ARGV[3])
if was_registered then
  return 1
end
return 0
