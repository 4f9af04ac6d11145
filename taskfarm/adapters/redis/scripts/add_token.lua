-- Stores a worker token unless its id is taken. KEYS: the token's hash (by digest), the ids
-- hash (id -> digest), the token index. ARGV: id, digest, created (micros), then the hash's
-- fields and values in pairs. Returns 1, or 0 when the id is taken.
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
