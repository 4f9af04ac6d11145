-- Stores a new run unless its uuid is taken. KEYS: the run's hash.
-- ARGV: its fields and values, in pairs. Returns 1, or 0 when the uuid is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
