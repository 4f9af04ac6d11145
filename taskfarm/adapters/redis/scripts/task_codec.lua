-- What every run script starts with. KEYS, in this order: the run's hash (counters and policy),
-- its touched tasks, its requeued tasks (scored by index), its computing tasks (scored by
-- when their lease runs out, '+inf' without one) and its failed tasks (scored by index).
-- A task is stored as 'state,progress,attempts,lease,worker': state w(aiting), c(omputing),
-- d(one) or f(ailed); lease in whole microseconds since the epoch, '' for none; the worker
-- last, since it may contain commas. Numbers stay below 2^53, exact in Lua's doubles; '%d'
-- prints them whole.
local run, tasks, waiting, computing, failed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local UNTOUCHED = 'w,0,0,,'
local COUNTER = {c = 'computing', d = 'done', f = 'failed'}

local function whole(number)
  return string.format('%d', number)
end

local function decode(stored)
  local state, progress, attempts, lease, worker =
    string.match(stored or UNTOUCHED, '^(%a),(%d+),(%d+),(%d*),(.*)$')
  return {state = state, progress = progress, attempts = attempts, lease = lease, worker = worker}
end

local function encode(task)
  return table.concat({task.state, task.progress, task.attempts, task.lease, task.worker}, ',')
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
