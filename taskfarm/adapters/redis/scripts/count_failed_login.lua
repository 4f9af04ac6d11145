-- Counts a failed login by each key. KEYS: a hash per key (failures, since).
-- ARGV: now and the window, in microseconds. A window that ended starts again now; each
-- hash expires with its window, which the store's own clock measures, so nothing lingers.
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  local since = tonumber(redis.call('HGET', key, 'since'))
  if since and now < since + window then
    redis.call('HINCRBY', key, 'failures', 1)
  else
    redis.call('HSET', key, 'failures', 1, 'since', now)
    redis.call('PEXPIRE', key, math.ceil(window / 1000))
  end
end
return 1
