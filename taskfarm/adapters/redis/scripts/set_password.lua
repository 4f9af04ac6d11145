-- Replaces a user's password hash and token stamp. KEYS: user.  ARGV: hash, stamp.
-- Returns 1, or 0 when the user does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[1], 'token_stamp', ARGV[2])
return 1
