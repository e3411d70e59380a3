-- Appends a group of publications to ONE channel, then publishes the fresh
-- ones in one live frame. Every key of the channel shares its hash tag.
--
-- KEYS: as channel_state.lua (3: idempotency HASH key -> "offset time expires",
--       4: idempotency ZSET key -> expires, for lazy cleanup)
-- ARGV: 1-4 as channel_state.lua, 5 item count, 6 live pub/sub channel,
--       7 meta ttl ms
--       then per item 8 values: time_ms, "-" or "k<key>", key expires ms,
--       max_len, stream ttl ms, key ttl ms, exclude ("0" for none), tail
-- Each fresh item becomes the stream entry 0-<offset> with field 'p' the
-- tail and, when exclude is not "0", field 'x' the excluded connection.
-- Returns: { epoch, offset, time_ms, duplicate ("1"/"0"), ... } or STALEGEN.
local meta, stream, keys, key_expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local epoch, top, stale = channel_state()
if stale then
  return stale
end

local count = tonumber(ARGV[5])
local reply = { epoch }
local frame = { 'P', epoch, '\n' }
local fresh = 0
local stream_ttl, key_ttl = 0, 0
local cleaned = false
for i = 0, count - 1 do
  local at = 8 + i * 8
  local time_ms, key, expires = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local max_len, exclude, tail = ARGV[at + 3], ARGV[at + 6], ARGV[at + 7]
  stream_ttl = math.max(stream_ttl, tonumber(ARGV[at + 4]))
  key_ttl = math.max(key_ttl, tonumber(ARGV[at + 5]))
  local duplicate = false
  if key ~= '-' then
    key = string.sub(key, 2)
    if not cleaned then
      -- Forget keys whose window ended before this request (a few per call).
      local expired = redis.call('ZRANGEBYSCORE', key_expiry, '-inf', time_ms, 'LIMIT', 0, 100)
      if #expired > 0 then
        redis.call('HDEL', keys, unpack(expired))
        redis.call('ZREM', key_expiry, unpack(expired))
      end
      cleaned = true
    end
    local remembered = redis.call('HGET', keys, key)
    if remembered then
      local offset, first_time, first_expires = string.match(remembered, '^(%d+) (%d+) (%d+)$')
      if offset and tonumber(time_ms) < tonumber(first_expires) then
        duplicate = true
        reply[#reply + 1] = offset
        reply[#reply + 1] = first_time
        reply[#reply + 1] = '1'
      end
    end
  end
  if not duplicate then
    top = top + 1
    local offset = tostring(top)
    if exclude == '0' then
      redis.call('XADD', stream, 'MAXLEN', '~', max_len, '0-' .. offset, 'p', tail)
    else
      -- Kept for a node that heals a lost frame from history (read.lua);
      -- only when set, so most entries stay just 'p'.
      redis.call('XADD', stream, 'MAXLEN', '~', max_len, '0-' .. offset, 'p', tail, 'x', exclude)
    end
    if key ~= '-' then
      redis.call('HSET', keys, key, offset .. ' ' .. time_ms .. ' ' .. expires)
      redis.call('ZADD', key_expiry, expires, key)
    end
    reply[#reply + 1] = offset
    reply[#reply + 1] = time_ms
    reply[#reply + 1] = '0'
    frame[#frame + 1] = offset .. ' ' .. exclude .. ' '
    frame[#frame + 1] = tail
    fresh = fresh + 1
  end
end

redis.call('HSET', meta, 's', top)
redis.call('PEXPIRE', meta, math.max(tonumber(ARGV[7]), stream_ttl))
if fresh > 0 then
  redis.call('PEXPIRE', stream, stream_ttl)
end
if redis.call('EXISTS', keys) == 1 then
  redis.call('PEXPIRE', keys, key_ttl)
  redis.call('PEXPIRE', key_expiry, key_ttl)
end
if fresh > 0 then
  redis.call('PUBLISH', ARGV[6], table.concat(frame))
end
return reply
