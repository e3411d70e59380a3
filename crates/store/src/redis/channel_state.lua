-- Shared prologue of append.lua and read.lua: the channel's epoch and top
-- offset, created or rotated by the generation rule.
--
-- KEYS: 1 meta (HASH e, s, g)  2 stream  3 idempotency HASH  4 idempotency ZSET
--       5 fanfare:instance (HASH gen, epoch, since, written by observe.lua)
--       6 tombstones (ZSET "<offset> <tail>" scored by offset, see append.lua)
-- ARGV: 1 a fresh epoch  2 generation  3 now ms  4 epoch period ms
-- Returns epoch, top, or nil and the error "STALEGEN <generation>" when this
-- connection's generation is not the instance's (or a channel's is newer).
local function channel_state()
  local meta, stream = KEYS[1], KEYS[2]
  local generation = tonumber(ARGV[2])
  local instance = redis.call('HMGET', KEYS[5], 'gen', 'epoch', 'since')
  if tonumber(instance[1]) ~= generation or not instance[2] then
    -- The instance record is gone (FLUSHALL) or moved on: observe again.
    return nil, nil, redis.error_reply('STALEGEN ' .. (instance[1] or '0'))
  end
  local stored = redis.call('HMGET', meta, 'e', 's', 'g')
  local epoch, top, stored_generation = stored[1], tonumber(stored[2]), tonumber(stored[3])
  if not epoch or not top then
    -- A new channel, or one whose meta expired: the instance's epoch, renewed
    -- once a period so that a meta that expired (after at least a period)
    -- never comes back under the epoch it had. A stream or keys that
    -- outlived their meta are not trusted (nor their tombstones).
    epoch = instance[2]
    local now = tonumber(ARGV[3])
    if now - tonumber(instance[3] or '0') >= tonumber(ARGV[4]) then
      epoch = ARGV[1]
      redis.call('HSET', KEYS[5], 'epoch', epoch, 'since', ARGV[3])
    end
    top = 0
    redis.call('DEL', stream, KEYS[3], KEYS[4], KEYS[6])
    redis.call('HSET', meta, 'e', epoch, 's', 0, 'g', ARGV[2])
  elseif stored_generation == nil or stored_generation < generation then
    -- The instance may have lost acknowledged appends: the generation's
    -- epoch, and the offsets go on (never reissue one under an old epoch).
    epoch = instance[2]
    local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
    if last then
      top = math.max(top, tonumber(string.sub(last[1], 3)))
    end
    redis.call('HSET', meta, 'e', epoch, 's', top, 'g', ARGV[2])
  elseif stored_generation > generation then
    return nil, nil, redis.error_reply('STALEGEN ' .. stored[3])
  end
  return epoch, top, nil
end

