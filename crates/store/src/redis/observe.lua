-- Decides the generation of a new connection to this Redis instance.
--
-- KEYS: 1 fanfare:instance (HASH run_id, replid, gen, and the epoch of new
--       channels with the time it was chosen: epoch, since)
-- ARGV: 1 run_id  2 master_replid  3 master_replid2
--       4 durable ("1": AOF with appendfsync always)  5 now ms
--       6 floor (a generation the caller's scripts met: this one's must not be
--       lower, and must be higher if the record's is lower) 7 a fresh epoch
-- Returns the generation (integer).
local stored = redis.call('HMGET', KEYS[1], 'run_id', 'replid', 'gen')
local now = tonumber(ARGV[5])
local floor = tonumber(ARGV[6])
local generation = tonumber(stored[3])
if not generation then
  generation = math.max(1, now, floor + 1)
elseif generation < floor then
  -- Channels are ahead of the instance record: it was lost; trust nothing.
  generation = math.max(floor + 1, now)
elseif stored[1] ~= ARGV[1] or stored[2] ~= ARGV[2] then
  -- A promoted replica keeps its old replication id as master_replid2 (a
  -- restarted primary has none). Comparing it with the stored id is not
  -- enough: a primary changes its id when its first replica attaches.
  local promoted = ARGV[3] == stored[2] or string.find(ARGV[3], '[^0]') ~= nil
  if ARGV[4] ~= '1' or promoted then
    generation = math.max(generation + 1, now)
  end
end
if generation ~= tonumber(stored[3]) or not redis.call('HGET', KEYS[1], 'epoch') then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[7], 'since', ARGV[5])
end
redis.call('HSET', KEYS[1], 'run_id', ARGV[1], 'replid', ARGV[2], 'gen', string.format('%d', generation))
return generation
