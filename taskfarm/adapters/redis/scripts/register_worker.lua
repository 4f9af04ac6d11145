-- Registers a worker once. KEYS: worker, last worker id, worker index.
-- ARGV: uuid, hostname, pid, now. Returns the stored {id, hostname, pid, started, last seen}:
-- the caller compares them with its own.
local known = redis.call('HMGET', KEYS[1], 'id', 'hostname', 'pid', 'started', 'last_seen')
if known[1] then
  return known
end
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'id', id, 'hostname', ARGV[2], 'pid', ARGV[3], 'started', ARGV[4],
  'last_seen', ARGV[4])
redis.call('ZADD', KEYS[3], id, ARGV[1])
return {tostring(id), ARGV[2], ARGV[3], ARGV[4], ARGV[4]}
