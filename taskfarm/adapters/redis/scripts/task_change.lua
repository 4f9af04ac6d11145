-- `Task.changed` for one task (touched or not), with the run's counters moved and the attempt
-- the change ends recorded (`Task.attempt_ended`): the rule of `update.lua` and `change.lua`.
-- `change` holds the new progress and state letter ('' for unchanged), now in microseconds,
-- the exit status (or '') and the error text (or nil); `by` is the worker making the change,
-- or nil. Returns the task as stored; or false and the task as encoded, changing nothing,
-- when another worker holds it or when a change of nothing (a heartbeat) finds it not
-- computing.

-- Set to anything but computing, a computing task ends its attempt.
local ENDS_AS = {d = 'done', f = 'failed', w = 'handed-back'}

local function change_task(index, change, by, seconds, max_attempts)
  local new_progress, new_state, now = change.progress, change.state, change.now
  local stored = redis.call('HGET', tasks, index)
  local task = decode(stored)
  if by and task.worker ~= '' and task.worker ~= by then
    return false, encode(task)
  end
  if new_state == '' and new_progress == '' and task.state ~= 'c' then
    return false, encode(task)
  end

  local state, progress, holder = task.state, task.progress, task.worker
  local ends = state == 'c' and ENDS_AS[new_state] ~= nil
  if new_state ~= '' then task.state = new_state end
  if ends and new_state == 'w' then
    -- Handed back: the attempt is given back (never below 0, for a task set computing
    -- unclaimed).
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
  if ENDS_AS[new_state] and (ends or change.exit_code ~= '' or change.told) then
    record_attempt(index, ENDS_AS[new_state], holder ~= '' and holder or (by or ''),
      task.started, now, change.exit_code, change.told)
  end
  -- An untouched task is in neither sorted set, whatever state it is decoded with.
  return store(index, task, stored and state)
end

-- The change `ARGV` describes from `first` on: new progress or '', new state letter or '',
-- now in microseconds, the exit status or '', and '' or '=' followed by the error text.
local function change_in(first)
  local told = ARGV[first + 4]
  return {progress = ARGV[first], state = ARGV[first + 1], now = ARGV[first + 2],
    exit_code = ARGV[first + 3], told = told ~= '' and string.sub(told, 2) or nil}
end
