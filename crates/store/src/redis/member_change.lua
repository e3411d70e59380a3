-- The channel side of a member change (`members.rs`), authoritative.
-- KEYS[1]: fanfare:{<channel>}:members (ZSET, every score 0, so ordered
--          bytewise by user id), KEYS[2]: fanfare:{<channel>}:member_seq.
-- ARGV[1]: "add", "remove" or "state" (decide nothing, only stamp and
--          report), ARGV[2]: max_members, ARGV[3..]: distinct user ids.
-- Reply: { refused (1: the add would exceed max_members, nothing changed;
--          else 0), the change number, then per user 2 * changed + member }.
-- Every call takes a new change number, so each user side can apply the
-- reported states last-number-wins.
local members, seq_key = KEYS[1], KEYS[2]
local op, max_members = ARGV[1], tonumber(ARGV[2])
local seq = redis.call('INCR', seq_key)
local states = {}
local new = 0
for i = 3, #ARGV do
  local member = redis.call('ZSCORE', members, ARGV[i]) and 1 or 0
  states[i - 2] = member
  if member == 0 then new = new + 1 end
end
local refused = 0
if op == 'add' and redis.call('ZCARD', members) + new > max_members then
  refused = 1
end
local reply = { refused, seq }
for i = 3, #ARGV do
  local member = states[i - 2]
  local changed = 0
  if refused == 0 and op == 'add' and member == 0 then
    redis.call('ZADD', members, 0, ARGV[i])
    member, changed = 1, 1
  elseif op == 'remove' and member == 1 then
    redis.call('ZREM', members, ARGV[i])
    member, changed = 0, 1
  end
  reply[#reply + 1] = 2 * changed + member
end
return reply
