-- Adds a user unless the name is taken. KEYS: user, user index, last user id.
-- ARGV: username, password hash, token stamp, admin (1 or 0).
-- Returns the new id, or false when taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local id = redis.call('INCR', KEYS[3])
redis.call(
  'HSET', KEYS[1], 'id', id, 'password_hash', ARGV[2], 'token_stamp', ARGV[3], 'admin', ARGV[4]
)
redis.call('ZADD', KEYS[2], id, ARGV[1])
return id
