-- Registers or renews a node's lease, by the engine's clock.
-- KEYS[1] leases (ZSET node -> expiry ms), KEYS[2] records (HASH node -> "<heartbeat ms> <info JSON>"),
-- KEYS[3] claims (HASH node -> ms until which its claimer is cleaning up after it),
-- KEYS[4] lives (HASH node -> its life: when it was last registered anew),
-- KEYS[5] the last life given (STRING), so lives only grow even within a millisecond
-- ARGV[1] node, ARGV[2] lease ms, ARGV[3] info JSON
-- Returns the node's life (the engine's time in ms when it was registered
-- anew, made larger than any life given before: the same for every
-- heartbeat of one registration), or -1 while it is claimed and
-- being cleaned up after (then it is not registered: it must wait).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then
  if tonumber(held) > now then
    return -1
  end
  redis.call('HDEL', KEYS[3], ARGV[1])
end
local was_registered = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], string.format('%.0f', now) .. ' ' .. ARGV[3])
local life = redis.call('HGET', KEYS[4], ARGV[1])
if not was_registered or not life then
  local last = tonumber(redis.call('GET', KEYS[5]) or '0')
  life = string.format('%.0f', math.max(now, last + 1))
  redis.call('SET', KEYS[5], life)
  redis.call('HSET', KEYS[4], ARGV[1], life)
end
return tonumber(life)
