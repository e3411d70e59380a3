-- The records of the nodes whose lease runs past the engine's now.
-- KEYS as registry_heartbeat.lua.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local records = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf')) do
  local record = redis.call('HGET', KEYS[2], node)
  if record then
    records[#records + 1] = record
  end
end
return records
