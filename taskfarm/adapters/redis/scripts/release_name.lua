-- Frees a run's name, if it still names that run. KEYS: the hash of run names.
-- ARGV: the name, the run's uuid. Returns 1, or 0 when the name is another run's or nobody's.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
return redis.call('HDEL', KEYS[1], ARGV[1])
