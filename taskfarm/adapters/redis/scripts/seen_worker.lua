-- Records when a worker was last heard from. KEYS: worker.  ARGV: now.
-- Returns the stored {id, hostname, pid, started, last seen, owner}, or false for an unknown
-- worker.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
return redis.call('HMGET', KEYS[1], 'id', 'hostname', 'pid', 'started', 'last_seen', 'owner')
