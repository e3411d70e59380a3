-- Moves a user's oldest unexpired resume point in one channel to a new
-- holder (ResumePoints::claim_resume_point).
-- KEYS[1]  fanfare:{user:<user>}:resume:<channel> (HASH holder ->
--          "<expires_at_ms> <offset> <epoch>")
-- ARGV[1]  the claiming holder, ARGV[2] now (ms), ARGV[3] the claimed
--          point's new expiry (ms).
-- Returns { epoch, offset } or nil. Offsets are compared as decimal strings
-- (length, then text), never as Lua numbers, which lose u64 precision.
local holder, now, expires = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local function lower(a, b)
  if #a ~= #b then
    return #a < #b
  end
  return a < b
end

local fields = redis.call('HGETALL', KEYS[1])
local latest, oldest, oldest_offset, oldest_epoch = 0, nil, nil, nil
for i = 1, #fields, 2 do
  local until_ms, offset, epoch = string.match(fields[i + 1], '^(%d+) (%d+) (.*)$')
  until_ms = tonumber(until_ms)
  if until_ms <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    if until_ms > latest then
      latest = until_ms
    end
    if oldest == nil or lower(offset, oldest_offset) then
      oldest, oldest_offset, oldest_epoch = fields[i], offset, epoch
    end
  end
end
if oldest == nil then
  return nil
end
redis.call('HDEL', KEYS[1], oldest)
if expires > now then
  redis.call('HSET', KEYS[1], holder, ARGV[3] .. ' ' .. oldest_offset .. ' ' .. oldest_epoch)
  if expires > latest then
    latest = expires
  end
end
if latest > 0 then
  redis.call('PEXPIRE', KEYS[1], latest - now)
end
return { oldest_epoch, oldest_offset }
