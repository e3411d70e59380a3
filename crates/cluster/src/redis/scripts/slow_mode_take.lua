-- Slow mode: one publication per user per interval in a channel.
-- KEYS[1] the user's slot in the channel, KEYS[2] the channel's interval
-- (ms) when a moderator set one
-- ARGV[1] the namespace's interval in ms (0: off)
-- Returns {interval in force in ms, 0 when admitted else the wait in ms}.
local interval = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
if interval <= 0 then
  return {0, 0}
end
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', interval) then
  return {interval, 0}
end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then
  left = 1
end
return {interval, left}
