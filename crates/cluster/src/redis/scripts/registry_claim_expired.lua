-- Removes and returns the nodes whose lease has run out by the engine's
-- clock: each is returned to exactly one caller, and stays claimed (its
-- heartbeats do not register it) until that caller's registry_leave.lua,
-- or for ARGV[1] ms at most.
-- KEYS as registry_heartbeat.lua.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
for _, node in ipairs(expired) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('HDEL', KEYS[2], node)
  redis.call('HDEL', KEYS[4], node)
  redis.call('HSET', KEYS[3], node, string.format('%.0f', now + tonumber(ARGV[1])))
end
return expired
