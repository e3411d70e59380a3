-- Reads a channel's position and publications; gives an unknown channel its
-- epoch (so its position is stable) by the same rule as append.lua.
--
-- KEYS: as channel_state.lua
-- ARGV: 1-4 as channel_state.lua, 5 meta ttl ms, 6 since ("-" for none),
--       7 max_len, 8 first kept time ms, 9 limit, 10 reverse ("1"/"0")
-- Returns: { epoch, top, offset, exclude, tail, offset, exclude, tail, ... }
--          (exclude "0" for none, as in a live frame) or STALEGEN.
local meta, stream = KEYS[1], KEYS[2]
local meta_ttl = tonumber(ARGV[5])
local epoch, top, stale = channel_state()
if stale then
  return stale
end
if redis.call('PTTL', meta) < meta_ttl / 2 then
  -- Keep the epoch of a channel that is read but idle.
  redis.call('PEXPIRE', meta, meta_ttl)
end

local reply = { epoch, tostring(top) }
local limit = tonumber(ARGV[9])
local first = 1
if ARGV[6] ~= '-' then
  first = tonumber(ARGV[6]) + 1
end
first = math.max(first, top - tonumber(ARGV[7]) + 1)
local last = top
local first_kept_time = tonumber(ARGV[8])
local reverse = ARGV[10] == '1'
local found = 0
while found < limit and first <= last do
  local chunk = math.min(limit - found, 500)
  local entries
  if reverse then
    entries = redis.call('XREVRANGE', stream, '0-' .. last, '0-' .. first, 'COUNT', chunk)
  else
    entries = redis.call('XRANGE', stream, '0-' .. first, '0-' .. last, 'COUNT', chunk)
  end
  if #entries == 0 then
    break
  end
  for _, entry in ipairs(entries) do
    local offset = tonumber(string.sub(entry[1], 3))
    -- Fields as append.lua writes them: 'p' <tail>, then 'x' <conn> only
    -- when the publication excluded a connection.
    local tail, exclude = entry[2][2], entry[2][4] or '0'
    local time_ms = tonumber(string.match(tail, '^(%d+) '))
    if time_ms and time_ms >= first_kept_time and found < limit then
      reply[#reply + 1] = tostring(offset)
      reply[#reply + 1] = exclude
      reply[#reply + 1] = tail
      found = found + 1
    end
    if reverse then
      last = offset - 1
    else
      first = offset + 1
    end
  end
end
return reply
