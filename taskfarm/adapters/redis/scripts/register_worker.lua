-- Registers a worker once. KEYS: worker, last worker id.  ARGV: hostname, pid, started.
-- Returns the stored {id, hostname, pid, started}: the caller compares them with its own.
local known = redis.call('HMGET', KEYS[1], 'id', 'hostname', 'pid', 'started')
if known[1] then
  return known
end
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'id', id, 'hostname', ARGV[1], 'pid', ARGV[2], 'started', ARGV[3])
return {tostring(id), ARGV[1], ARGV[2], ARGV[3]}
