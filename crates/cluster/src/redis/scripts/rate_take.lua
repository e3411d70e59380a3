-- Takes tokens from a bucket, all or none (GCRA: the key holds the bucket's
-- theoretical arrival time, in milliseconds of the server's clock).
-- KEYS[1] the bucket
-- ARGV[1] the interval one token takes to come back, in ms
-- ARGV[2] the bucket's size in ms (interval × burst)
-- ARGV[3] how many tokens to take
-- Returns 0 when admitted, else the wait in ms (at least 1).
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local interval = tonumber(ARGV[1])
local size = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local next_tat = tat + interval * tonumber(ARGV[3])
local excess = next_tat - now - size
if excess > 0 then
  return math.max(1, math.ceil(excess))
end
redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX', math.max(1, math.ceil(next_tat - now)))
return 0
