-- Applies `Task.changed` to one task (touched or not), moves the run's counters with it and
-- records the attempt the change ends (`Task.attempt_ended`).
-- ARGV: index, new progress or '', new state letter or '', now in microseconds, the exit
-- status or '', '' or '=' followed by the error text, and, when a worker makes the change,
-- that worker's uuid.
-- Returns 'no-run'; {'no-task', number of tasks} for an index past the run; {'conflict',
-- stored task}, changing nothing, when another worker holds the task or when a change of
-- nothing (a heartbeat) finds the task not computing; else the task as stored.

local index, new_progress, new_state, now, exit_code, told, by =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
told = told ~= '' and string.sub(told, 2) or nil
local size, seconds, max_attempts =
  unpack(redis.call('HMGET', run, 'num_tasks', 'lease_seconds', 'max_attempts'))
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

local state, progress, holder = task.state, task.progress, task.worker
-- Set to anything but computing, a computing task ends its attempt.
local ENDS_AS = {d = 'done', f = 'failed', w = 'handed-back'}
local ends = state == 'c' and ENDS_AS[new_state] ~= nil
if new_state ~= '' then task.state = new_state end
if ends and new_state == 'w' then
  -- Handed back: the attempt is given back (never below 0, for a task set computing unclaimed).
  task.attempts = whole(math.max(tonumber(task.attempts) - 1, 0))
elseif ends and new_state == 'f' and max_attempts
    and tonumber(task.attempts) < tonumber(max_attempts) then
  task.state = 'w'  -- failed, with attempts left: back to the queue
end
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
if ENDS_AS[new_state] and (ends or exit_code ~= '' or told) then
  record_attempt(index, ENDS_AS[new_state], holder ~= '' and holder or (by or ''), task.started,
    now, exit_code, told)
end
-- An untouched task is in neither sorted set, whatever state it is decoded with.
return store(index, task, stored and state)
