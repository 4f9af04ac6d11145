-- Applies `Task.changed` to one task (touched or not) and moves the run's counters with it.
-- ARGV: index, new progress or '', new state letter or '', now in microseconds, and, when a
-- worker makes the change, that worker's uuid.
-- Returns 'no-run'; {'no-task', number of tasks} for an index past the run; {'conflict',
-- stored task}, changing nothing, when another worker holds the task or when a change of
-- nothing (a heartbeat) finds the task not computing; else the task as stored.

-- Stores a task that was stored in state `before` (false if it was not stored) and keeps the
-- queue of requeued tasks and the sets of computing and failed ones in step: they hold exactly
-- the stored tasks in those states.
local function store(index, task, before)
  local encoded = encode(task)
  redis.call('HSET', tasks, index, encoded)
  if task.state == 'w' then
    if before ~= 'w' then redis.call('ZADD', waiting, index, index) end
  elseif before == 'w' then
    redis.call('ZREM', waiting, index)
  end
  if task.state == 'c' then
    redis.call('ZADD', computing, lease_score(task), index)
  elseif before == 'c' then
    redis.call('ZREM', computing, index)
  end
  if task.state == 'f' then
    if before ~= 'f' then redis.call('ZADD', failed, index, index) end
  elseif before == 'f' then
    redis.call('ZREM', failed, index)
  end
  return encoded
end

local index, new_progress, new_state, now, by = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local size, seconds = unpack(redis.call('HMGET', run, 'num_tasks', 'lease_seconds'))
if not size then
  return 'no-run'
end
if tonumber(index) >= tonumber(size) then
  return {'no-task', size}
end

local stored = redis.call('HGET', tasks, index)
local task = decode(stored)
if by and task.worker ~= '' and task.worker ~= by then
  return {'conflict', encode(task)}
end
if new_state == '' and new_progress == '' and task.state ~= 'c' then
  return {'conflict', encode(task)}
end

local state, progress = task.state, task.progress
if new_state ~= '' then task.state = new_state end
if new_progress ~= '' then task.progress = new_progress end
if task.state == 'c' or task.state == 'd' then
  -- A task being computed, or finished, is held by its worker, or by the one changing it.
  if task.worker == '' then task.worker = by or '' end
end
if task.state == 'c' then
  task.lease = lease_expiry(now, seconds)
else
  -- Nobody holds a task that is neither computed nor finished.
  if task.state ~= 'd' then task.worker = '' end
  task.lease = ''
end

if task.state ~= state then
  if COUNTER[state] then redis.call('HINCRBY', run, COUNTER[state], -1) end
  if COUNTER[task.state] then redis.call('HINCRBY', run, COUNTER[task.state], 1) end
end
local delta = tonumber(task.progress) - tonumber(progress)
if delta ~= 0 then
  redis.call('HINCRBY', run, 'progress', whole(delta))
end
-- An untouched task is in neither sorted set, whatever state it is decoded with.
return store(index, task, stored and state)
