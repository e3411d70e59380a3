-- Moves every pending webhook record of the source hashes into the
-- destination hash, in one step: a record is moved (and returned) once,
-- however many nodes move at once.
--
-- KEYS: 1 the destination HASH (id -> record); 2.. the source HASHes
-- Returns: the moved records, flat: id, record, id, record, ...
local moved = {}
for i = 2, #KEYS do
  local pairs = redis.call('HGETALL', KEYS[i])
  for j = 1, #pairs, 2 do
    redis.call('HSET', KEYS[1], pairs[j], pairs[j + 1])
    moved[#moved + 1] = pairs[j]
    moved[#moved + 1] = pairs[j + 1]
  end
  redis.call('DEL', KEYS[i])
end
return moved
