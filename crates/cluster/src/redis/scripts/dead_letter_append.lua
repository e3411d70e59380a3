-- Appends one dead letter, then drops the oldest until the kept letters
-- fit the bound (the newest is always kept).
--
-- KEYS: 1 LIST of letters, newest first; 2 their total size in bytes
-- ARGV: 1 the letter, 2 the bound in bytes
-- Returns: the total size kept.
local list, size = KEYS[1], KEYS[2]
local bound = tonumber(ARGV[2])
redis.call('LPUSH', list, ARGV[1])
local total = redis.call('INCRBY', size, #ARGV[1])
while total > bound and redis.call('LLEN', list) > 1 do
  local oldest = redis.call('RPOP', list)
  total = redis.call('DECRBY', size, #oldest)
end
if redis.call('LLEN', list) == 1 then
  -- Only the newest is left: its size is the total, whatever the counter
  -- said (a counter left behind by a deleted list heals here).
  total = #ARGV[1]
  redis.call('SET', size, total)
end
return total
