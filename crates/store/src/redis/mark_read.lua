-- Moves a user's read cursor in one channel forward (CursorStore::mark_read).
-- KEYS[1]  fanfare:{user:<user>}:cursors (HASH channel -> "<epoch> <offset>")
-- ARGV[1]  the channel, ARGV[2] the mark's epoch, ARGV[3] its offset
--          (decimal, no leading zeros).
-- Returns { epoch, offset, moved }: the cursor in force after the mark, and
-- 1 if the mark changed it. Offsets are compared as decimal strings (length,
-- then text), never as Lua numbers, which are doubles and lose u64 precision.
local function greater(a, b)
  if #a ~= #b then
    return #a > #b
  end
  return a > b
end

local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local epoch, offset = string.match(stored, '^(.*) (%d+)$')
  if epoch == ARGV[2] and not greater(ARGV[3], offset) then
    return { epoch, offset, 0 }
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
return { ARGV[2], ARGV[3], 1 }
