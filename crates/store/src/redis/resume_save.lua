-- Sets one holder's resume point in several channels of one user
-- (ResumePoints::save_resume_points).
-- KEYS[i]  fanfare:{user:<user>}:resume:<channel i> (HASH holder ->
--          "<expires_at_ms> <offset> <epoch>"), all under the user's tag.
-- ARGV[1]  the holder, ARGV[2] now (ms), ARGV[3] the new points' expiry (ms),
--          then per key its epoch and offset (decimal).
-- Expired points of each pair are dropped; each key expires with its
-- latest point (relative to the caller's clock, the one the points are
-- judged by), so a pair nobody writes any more disappears by itself.
local holder, now, expires = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local function prune(key)
  local fields = redis.call('HGETALL', key)
  local latest = 0
  for i = 1, #fields, 2 do
    local until_ms = tonumber(string.match(fields[i + 1], '^(%d+) '))
    if until_ms <= now then
      redis.call('HDEL', key, fields[i])
    elseif until_ms > latest then
      latest = until_ms
    end
  end
  return latest
end

for i, key in ipairs(KEYS) do
  local latest = prune(key)
  local epoch, offset = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  if expires > now then
    redis.call('HSET', key, holder, ARGV[3] .. ' ' .. offset .. ' ' .. epoch)
    if expires > latest then
      latest = expires
    end
  else
    redis.call('HDEL', key, holder)
  end
  if latest > 0 then
    redis.call('PEXPIRE', key, latest - now)
  end
end
return 1
