-- Deletes a user. KEYS: user, user index.  ARGV: username. Returns 1, or 0 when unknown.
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
