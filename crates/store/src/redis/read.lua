-- Reads a channel's position and publications; gives an unknown channel its
-- epoch (so its position is stable) by the same rule as append.lua.
--
-- KEYS: as channel_state.lua (6: the tombstones append.lua keeps)
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
local deleted = KEYS[6]

-- Stream entries and tombstones (deleted entries, kept in their ZSET) are
-- merged by offset, a chunk of each at a time: a chunk is complete up to
-- the nearer of its two ends, and the scan goes on from there.
local function stream_chunk(chunk)
  local items = {}
  local entries
  if reverse then
    entries = redis.call('XREVRANGE', stream, '0-' .. last, '0-' .. first, 'COUNT', chunk)
  else
    entries = redis.call('XRANGE', stream, '0-' .. first, '0-' .. last, 'COUNT', chunk)
  end
  for _, entry in ipairs(entries) do
    -- Fields as append.lua writes them: 'p' <tail>, then 'x' <conn> only
    -- when the publication excluded a connection.
    items[#items + 1] = { tonumber(string.sub(entry[1], 3)), entry[2][4] or '0', entry[2][2] }
  end
  return items
end

local function tombstone_chunk(chunk)
  local items = {}
  local members
  if reverse then
    members = redis.call('ZREVRANGEBYSCORE', deleted, last, first, 'LIMIT', 0, chunk)
  else
    members = redis.call('ZRANGEBYSCORE', deleted, first, last, 'LIMIT', 0, chunk)
  end
  for _, member in ipairs(members) do
    local offset, tail = string.match(member, '^(%d+) (.*)$')
    items[#items + 1] = { tonumber(offset), '0', tail }
  end
  return items
end

local function before(a, b)
  if reverse then
    return a > b
  end
  return a < b
end

local found = 0
while found < limit and first <= last do
  local chunk = math.min(limit - found, 500)
  local entries, tombstones = stream_chunk(chunk), tombstone_chunk(chunk)
  if #entries == 0 and #tombstones == 0 then
    break
  end
  -- The offset up to which both lists are complete.
  local bound = reverse and first or last
  for _, list in ipairs({ entries, tombstones }) do
    if #list == chunk and before(list[#list][1], bound) then
      bound = list[#list][1]
    end
  end
  local e, t = 1, 1
  while found < limit do
    local item
    if entries[e] and (not tombstones[t] or before(entries[e][1], tombstones[t][1])) then
      item, e = entries[e], e + 1
    elseif tombstones[t] then
      item, t = tombstones[t], t + 1
    else
      break
    end
    if before(bound, item[1]) then
      break
    end
    local time_ms = tonumber(string.match(item[3], '^(%d+) '))
    if time_ms and time_ms >= first_kept_time then
      reply[#reply + 1] = tostring(item[1])
      reply[#reply + 1] = item[2]
      reply[#reply + 1] = item[3]
      found = found + 1
    end
  end
  -- Everything up to the bound was taken or too old (or the limit is met).
  if reverse then
    last = bound - 1
  else
    first = bound + 1
  end
end
return reply
