-- Deletes a worker token. KEYS: the ids hash (id -> digest), the token index, the token's
-- hash. ARGV: id, digest (as the ids hash held it when read). Returns the token's fields, or
-- false when the id names no token with that digest (any more).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return false
end
local fields = redis.call('HGETALL', KEYS[3])
redis.call('DEL', KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return fields
