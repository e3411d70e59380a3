-- Appends a group of publications and deletes to ONE channel, in order,
-- then publishes the fresh ones in one live frame. Every key of the
-- channel shares its hash tag.
--
-- KEYS: as channel_state.lua (3: idempotency HASH key -> "offset time expires",
--       4: idempotency ZSET key -> expires, for lazy cleanup,
--       6: rewritten entries (tombstones, edited messages) ZSET
--          "<offset> <tail>" scored by offset)
-- ARGV: 1-4 as channel_state.lua, 5 item count, 6 live pub/sub channel,
--       7 meta ttl ms
--       then per item 10 values: time_ms, "-" or "k<key>", key expires ms,
--       max_len, stream ttl ms, key ttl ms, exclude ("0" for none), tail,
--       delete ("-" for an append; "o<offset>,<offset>…", "k<key>" or
--       "a<author>" for a delete; "u<offset>" for an edit, whose tail is
--       the update record), first kept time ms (deletes, edits)
-- Each fresh item becomes the stream entry 0-<offset> with field 'p' the
-- tail and, when exclude is not "0", field 'x' the excluded connection.
-- A delete XDELs each target's entry and adds its tombstone to KEYS[6];
-- its tail (a delete record with no offsets yet) gets the list after 'X'.
-- An edit XDELs its target's entry (or replaces its member of KEYS[6]) and
-- keeps the target with the new data in KEYS[6], marked E (Q).
-- Returns: { epoch, offset, time_ms, outcome, ... } or STALEGEN; outcome
-- "0" fresh, "1" duplicate, "X<offset>,…" a delete record, "N" nothing
-- to delete, "U<offset>" an update record, "M" nothing to edit (offset and
-- time "0" for N and M).
local meta, stream, keys, key_expiry, deleted = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6]
local epoch, top, stale = channel_state()
if stale then
  return stale
end

-- The candidate offsets of a delete, ascending and within [first, last].
local function candidates(spec, time_ms, first, last)
  local kind, what = string.sub(spec, 1, 1), string.sub(spec, 2)
  local found = {}
  if kind == 'o' then
    for offset in string.gmatch(what, '%d+') do
      local n = tonumber(offset)
      if n >= first and n <= last then
        found[#found + 1] = n
      end
    end
  elseif kind == 'k' then
    local remembered = redis.call('HGET', keys, what)
    if remembered then
      local offset, _, expires = string.match(remembered, '^(%d+) (%d+) (%d+)$')
      if offset and tonumber(time_ms) < tonumber(expires) then
        found[1] = tonumber(offset)
      end
    end
  end
  return found
end

-- A stored tail's parts (time, event/data/author lengths as stored, mark,
-- and the event, data and author texts); nil if malformed. Tails of the
-- older format (three fields) are messages without author.
local function parts(tail)
  local _, header_end, time_ms, event_len, data_len, author_len, mark =
    string.find(tail, '^(%d+) (%S+) (%S+) (%S+) (%S+)\n')
  if not time_ms then
    _, header_end, time_ms, event_len, data_len = string.find(tail, '^(%d+) (%S+) (%S+)\n')
    if not time_ms then
      return nil
    end
    author_len, mark = '-', '-'
  end
  local e, d, a = tonumber(event_len) or 0, tonumber(data_len) or 0, tonumber(author_len) or 0
  local from = header_end + 1
  return {
    time = tonumber(time_ms), event_len = event_len, author_len = author_len, mark = mark,
    event = string.sub(tail, from, from + e - 1),
    data = string.sub(tail, from + e, from + e + d - 1),
    author = string.sub(tail, from + e + d, from + e + d + a - 1),
  }
end

-- The mark a message gets once edited (E, Q in the priority lane); nil for
-- what is not a message (an update record, a delete record, a tombstone).
local edited_mark = { ['-'] = 'E', ['P'] = 'Q', ['E'] = 'E', ['Q'] = 'Q' }

-- Whether a stored mark is a delete's target: a message (edited or not) or
-- an update record.
local function deletable(mark)
  return edited_mark[mark] ~= nil or string.find(mark, '^[UV]%d') ~= nil
end

-- The stored tail at `offset` and where it lives: the stream entry's id,
-- or nil when it was rewritten into KEYS[6] (an edited message, a tombstone).
local function stored_at(offset)
  local entry = redis.call('XRANGE', stream, '0-' .. offset, '0-' .. offset)[1]
  if entry then
    return entry[2][2], entry[1]
  end
  local member = redis.call('ZRANGEBYSCORE', deleted, offset, offset)[1]
  if member then
    return string.match(member, '^%d+ (.*)$'), nil
  end
  return nil, nil
end

-- Replaces what is stored at `offset` (in the stream as `id`, or in
-- KEYS[6]) with `tail`, kept in KEYS[6] (stream entries cannot change).
local function rewrite(offset, id, tail)
  if id then
    redis.call('XDEL', stream, id)
  else
    redis.call('ZREMRANGEBYSCORE', deleted, offset, offset)
  end
  redis.call('ZADD', deleted, offset, offset .. ' ' .. tail)
end

-- Tombstones what the delete `spec` targets among offsets first..last
-- kept since `first_time`; returns the offsets tombstoned, ascending.
local function tombstone(spec, time_ms, first, last, first_time)
  local targets = {}
  local function consider(offset, id, tail, author)
    local p = parts(tail)
    if p and p.time >= first_time and deletable(p.mark) and (author == nil or p.author == author) then
      targets[#targets + 1] = offset
      rewrite(offset, id, p.time .. ' - - - D\n')
    end
  end
  if string.sub(spec, 1, 1) == 'a' then
    local author, from = string.sub(spec, 2), first
    while from <= last do
      local entries = redis.call('XRANGE', stream, '0-' .. from, '0-' .. last, 'COUNT', 500)
      if #entries == 0 then
        break
      end
      for _, entry in ipairs(entries) do
        consider(tonumber(string.sub(entry[1], 3)), entry[1], entry[2][2], author)
      end
      from = tonumber(string.sub(entries[#entries][1], 3)) + 1
    end
    -- Edited messages live in KEYS[6]; collect first, rewriting moves them.
    local edited, from = {}, first
    while from <= last do
      local members = redis.call('ZRANGEBYSCORE', deleted, from, last, 'LIMIT', 0, 500)
      if #members == 0 then
        break
      end
      for _, member in ipairs(members) do
        local offset, tail = string.match(member, '^(%d+) (.*)$')
        edited[#edited + 1] = { tonumber(offset), tail }
        from = tonumber(offset) + 1
      end
    end
    for _, item in ipairs(edited) do
      consider(item[1], nil, item[2], author)
    end
    table.sort(targets)
  else
    local seen = {}
    local offsets = candidates(spec, time_ms, first, last)
    table.sort(offsets)
    for _, offset in ipairs(offsets) do
      if not seen[offset] then
        seen[offset] = true
        local tail, id = stored_at(offset)
        if tail then
          consider(offset, id, tail, nil)
        end
      end
    end
  end
  return targets
end

-- Gives the message at the edit `spec`'s offset ("u<offset>"), among
-- offsets first..last kept since `first_time`, the data of the update
-- record `record` (a tail); returns the offset, or nil if there is no
-- such message.
local function edit(spec, record, first, last, first_time)
  local offset = tonumber(string.sub(spec, 2))
  if not offset or offset < first or offset > last then
    return nil
  end
  local tail, id = stored_at(offset)
  local p, update = tail and parts(tail), parts(record)
  if not p or not update or p.time < first_time or not edited_mark[p.mark] then
    return nil
  end
  rewrite(offset, id, p.time .. ' ' .. p.event_len .. ' ' .. #update.data .. ' ' .. p.author_len .. ' '
    .. edited_mark[p.mark] .. '\n' .. p.event .. update.data .. p.author)
  return offset
end

local count = tonumber(ARGV[5])
local reply = { epoch }
local frame = { 'P', epoch, '\n' }
local fresh = 0
local stream_ttl, key_ttl, max_len = 0, 0, 0
local cleaned = false
for i = 0, count - 1 do
  local at = 8 + i * 10
  local time_ms, key, expires = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local exclude, tail, delete = ARGV[at + 6], ARGV[at + 7], ARGV[at + 8]
  max_len = tonumber(ARGV[at + 3])
  stream_ttl = math.max(stream_ttl, tonumber(ARGV[at + 4]))
  key_ttl = math.max(key_ttl, tonumber(ARGV[at + 5]))
  local duplicate, nothing, outcome = false, false, '0'
  if key ~= '-' then
    -- Only appends clean (a delete's key is '-'): a delete judged by an
    -- earlier clock than this one must still find the key.
    if not cleaned then
      -- Forget keys whose window ended before this request (a few per call).
      local expired = redis.call('ZRANGEBYSCORE', key_expiry, '-inf', time_ms, 'LIMIT', 0, 100)
      if #expired > 0 then
        redis.call('HDEL', keys, unpack(expired))
        redis.call('ZREM', key_expiry, unpack(expired))
      end
      cleaned = true
    end
  end
  if string.sub(delete, 1, 1) == 'u' then
    local first = math.max(1, top - max_len + 1)
    local target = edit(delete, tail, first, top, tonumber(ARGV[at + 9]))
    if target then
      outcome = 'U' .. target
      key = '-'
    else
      nothing = true
      reply[#reply + 1] = '0'
      reply[#reply + 1] = '0'
      reply[#reply + 1] = 'M'
    end
  elseif delete ~= '-' then
    -- Retained by count among the offsets up to top, by age since the
    -- request's first kept time (as HistoryStore's "Deletes" says).
    local first = math.max(1, top - max_len + 1)
    local targets = tombstone(delete, time_ms, first, top, tonumber(ARGV[at + 9]))
    if #targets == 0 then
      nothing = true
      reply[#reply + 1] = '0'
      reply[#reply + 1] = '0'
      reply[#reply + 1] = 'N'
    else
      local list = table.concat(targets, ',')
      local newline = string.find(tail, '\n', 1, true)
      tail = string.sub(tail, 1, newline - 1) .. list .. string.sub(tail, newline)
      outcome = 'X' .. list
      key = '-'
    end
  elseif key ~= '-' then
    key = string.sub(key, 2)
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
  if not duplicate and not nothing then
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
    reply[#reply + 1] = outcome
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
if redis.call('EXISTS', deleted) == 1 then
  -- Tombstones follow the stream: cut by count with it (reads cut exactly).
  redis.call('ZREMRANGEBYSCORE', deleted, '-inf', '(' .. (top - max_len + 1))
  redis.call('PEXPIRE', deleted, stream_ttl)
end
if fresh > 0 then
  redis.call('PUBLISH', ARGV[6], table.concat(frame))
end
return reply
