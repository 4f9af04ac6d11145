-- Hands the next task of a run to a worker: requeued tasks first, lowest index first, then the
-- lowest untouched index past the frontier (skipping tasks written out of order).
-- KEYS: run, tasks, waiting.  ARGV: worker uuid.
-- Returns 'no-run', an empty array when nothing is left, or {index, progress}.
-- A task is stored as 'state,progress,worker' with state w(aiting), c(omputing) or d(one).
local run, tasks, waiting = KEYS[1], KEYS[2], KEYS[3]
local size = redis.call('HGET', run, 'num_tasks')
if not size then
  return 'no-run'
end

local index, progress
local requeued = redis.call('ZRANGE', waiting, 0, 0)
if requeued[1] then
  index = requeued[1]
  redis.call('ZREM', waiting, index)
  progress = string.match(redis.call('HGET', tasks, index), '^%a,(%d+),')
else
  -- Indices stay below 2^53, so Lua's doubles hold them exactly; '%d' prints them whole.
  local frontier = tonumber(redis.call('HGET', run, 'frontier'))
  size = tonumber(size)
  while frontier < size and redis.call('HEXISTS', tasks, string.format('%d', frontier)) == 1 do
    frontier = frontier + 1
  end
  if frontier >= size then
    redis.call('HSET', run, 'frontier', string.format('%d', frontier))
    return {}
  end
  index = string.format('%d', frontier)
  progress = '0'
  redis.call('HSET', run, 'frontier', string.format('%d', frontier + 1))
end

redis.call('HSET', tasks, index, 'c,' .. progress .. ',' .. ARGV[1])
redis.call('HINCRBY', run, 'computing', 1)
return {index, progress}
