-- Applies `Task.expired` to up to ARGV[2] computing tasks of the run whose lease ran out by
-- ARGV[1] (microseconds): each goes back to the queue, or fails once out of attempts, and
-- its attempt is recorded as lost.
-- Returns how many expired: fewer than asked means none is left. A deleted run has none.
local now, limit = ARGV[1], ARGV[2]
local due = redis.call('ZRANGEBYSCORE', computing, '-inf', now, 'LIMIT', 0, limit)
if #due == 0 then
  return 0
end

local max_attempts = redis.call('HGET', run, 'max_attempts')
max_attempts = max_attempts and tonumber(max_attempts)
local spent = 0
for _, index in ipairs(due) do
  local task = decode(redis.call('HGET', tasks, index))
  -- The attempt ended when its lease did.
  record_attempt(index, 'lost', task.worker, task.started, task.lease, '', nil)
  task.worker, task.lease = '', ''
  if max_attempts and tonumber(task.attempts) >= max_attempts then
    task.state = 'f'
    spent = spent + 1
    redis.call('ZADD', failed, index, index)
  else
    task.state = 'w'
    redis.call('ZADD', queue_of(task), index, index)
  end
  redis.call('HSET', tasks, index, encode(task))
end

redis.call('ZREM', computing, unpack(due))
redis.call('HINCRBY', run, 'computing', -#due)
if spent > 0 then
  redis.call('HINCRBY', run, 'failed', spent)
end
return #due
