-- The told state of a channel or member (announcements.rs).
-- KEYS[1] told states of the channel (HASH field -> "1" open | "c<ms>" closing since)
-- KEYS[2] the engine's truth: the channel's counts (HASH node -> count), or
--         its presence users (HASH user -> connection count)
-- ARGV[1] "open" | "close" | "release", ARGV[2] field, ARGV[3] grace ms,
-- ARGV[4] the user for a member, "" for the channel.
-- Returns 1 when the transition is to be announced, else 0.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local op, field = ARGV[1], ARGV[2]
local told = redis.call('HGET', KEYS[1], field)
if op == 'open' then
  if told == '1' then
    return 0
  end
  redis.call('HSET', KEYS[1], field, '1')
  if told and now - tonumber(string.sub(told, 2)) < tonumber(ARGV[3]) then
    return 0
  end
  return 1
elseif op == 'close' then
  if told == '1' then
    redis.call('HSET', KEYS[1], field, 'c' .. now)
  end
  return 0
end
if not told or told == '1' then
  return 0
end
local closed = true
if ARGV[4] == '' then
  for _, count in ipairs(redis.call('HVALS', KEYS[2])) do
    if tonumber(count) > 0 then
      closed = false
    end
  end
else
  closed = redis.call('HEXISTS', KEYS[2], ARGV[4]) == 0
end
if closed then
  redis.call('HDEL', KEYS[1], field)
  return 1
end
redis.call('HSET', KEYS[1], field, '1')
return 0
