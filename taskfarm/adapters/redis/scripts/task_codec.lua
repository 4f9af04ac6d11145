-- What every run script starts with. KEYS, in this order: the run's hash (counters and policy),
-- its touched tasks, its two queues of waiting tasks, requeued and deferred (`Task.deferred`:
-- waiting after using an attempt; each scored by index), its computing tasks (scored by
-- when their lease runs out, '+inf' without one), its failed tasks (scored by index) and the
-- records of its tasks' last attempts.
-- A task is stored as 'state,progress,attempts,lease:started,worker': state w(aiting),
-- c(omputing), d(one) or f(ailed); the lease's end and the last attempt's start in whole
-- microseconds since the epoch, '' for none (tasks stored before attempts had a start have
-- no ':started'); the worker last, since it may contain commas. Numbers stay below 2^53,
-- exact in Lua's doubles; '%d' prints them whole.
local run, tasks, waiting, deferred, computing, failed, attempts =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local UNTOUCHED = 'w,0,0,:,'
local COUNTER = {c = 'computing', d = 'done', f = 'failed'}

local function whole(number)
  return string.format('%d', number)
end

local function decode(stored)
  local state, progress, tries, lease, started, worker =
    string.match(stored or UNTOUCHED, '^(%a),(%d+),(%d+),(%d*):?(%d*),(.*)$')
  return {state = state, progress = progress, attempts = tries, lease = lease,
    started = started, worker = worker}
end

local function encode(task)
  return table.concat({task.state, task.progress, task.attempts,
    task.lease .. ':' .. task.started, task.worker}, ',')
end

-- Keeps the record of an attempt that ended: outcome, worker, start and end (microseconds,
-- '' for unknown), exit status and error ('' for none told). A success ('done') is kept only
-- over the record of an earlier attempt, so that tasks that succeed at once cost nothing.
local function record_attempt(index, outcome, worker, started, ended, exit_code, told)
  if outcome == 'done' and redis.call('HEXISTS', attempts, index) == 0 then
    return
  end
  local record = {outcome = outcome, worker = worker, started = started, ended = ended,
    exit_code = exit_code, error = told}
  -- Empty fields are left out: the reader takes a missing field for none.
  for field, value in pairs(record) do
    if value == '' and field ~= 'error' then record[field] = nil end
  end
  redis.call('HSET', attempts, index, cjson.encode(record))
end

-- When a lease taken or renewed at `now` runs out, given the run's `lease_seconds` field:
-- '' when the run gives no lease.
local function lease_expiry(now, seconds)
  if not seconds then
    return ''
  end
  return whole(tonumber(now) + tonumber(seconds) * 1000000)
end

local function lease_score(task)
  if task.lease == '' then
    return '+inf'
  end
  return task.lease
end

-- The queue a waiting task goes to: `Task.deferred`.
local function queue_of(task)
  if tonumber(task.attempts) > 0 then
    return deferred
  end
  return waiting
end

-- Stores a task that was stored in state `before` (false if it was not stored) and keeps the
-- queues of waiting tasks and the sets of computing and failed ones in step: they hold exactly
-- the stored tasks in those states.
local function store(index, task, before)
  local encoded = encode(task)
  redis.call('HSET', tasks, index, encoded)
  if task.state == 'w' then
    local queue = queue_of(task)
    redis.call('ZADD', queue, index, index)
    if before == 'w' then
      redis.call('ZREM', queue == waiting and deferred or waiting, index)
    end
  elseif before == 'w' then
    redis.call('ZREM', waiting, index)
    redis.call('ZREM', deferred, index)
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
