-- Registers a worker once. KEYS: worker, last worker id, worker index.
-- ARGV: uuid, hostname, pid, now, owner ('' for none). Returns the stored
-- {id, hostname, pid, started, last seen, owner}: the caller compares them with its own.
local known = redis.call('HMGET', KEYS[1], 'id', 'hostname', 'pid', 'started', 'last_seen',
  'owner')
if known[1] then
  return known
end
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'id', id, 'hostname', ARGV[2], 'pid', ARGV[3], 'started', ARGV[4],
  'last_seen', ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'owner', ARGV[5])
end
redis.call('ZADD', KEYS[3], id, ARGV[1])
return {tostring(id), ARGV[2], ARGV[3], ARGV[4], ARGV[4], ARGV[5]}
