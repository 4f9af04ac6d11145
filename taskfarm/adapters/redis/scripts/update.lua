-- Changes one task (touched or not) and moves the run's counters with it.
-- KEYS: run, tasks, waiting.  ARGV: index, new progress or '', new state letter or ''.
-- Returns 'no-run', 'no-task' (index past the run), or the task as stored.
local run, tasks, waiting = KEYS[1], KEYS[2], KEYS[3]
local index, new_progress, new_state = ARGV[1], ARGV[2], ARGV[3]
local size = redis.call('HGET', run, 'num_tasks')
if not size then
  return 'no-run'
end
if tonumber(index) >= tonumber(size) then
  return 'no-task'
end

local state, progress, worker = string.match(
  redis.call('HGET', tasks, index) or 'w,0,', '^(%a),(%d+),(.*)$')
if new_state == '' then new_state = state end
if new_progress == '' then new_progress = progress end
-- A task handed back belongs to nobody until it is claimed again.
if new_state == 'w' then worker = '' end

local counter = {c = 'computing', d = 'done'}
if new_state ~= state then
  if counter[state] then redis.call('HINCRBY', run, counter[state], -1) end
  if counter[new_state] then redis.call('HINCRBY', run, counter[new_state], 1) end
end
local delta = tonumber(new_progress) - tonumber(progress)
if delta ~= 0 then
  redis.call('HINCRBY', run, 'progress', string.format('%d', delta))
end
if new_state == 'w' then
  redis.call('ZADD', waiting, index, index)
else
  redis.call('ZREM', waiting, index)
end

local stored = new_state .. ',' .. new_progress .. ',' .. worker
redis.call('HSET', tasks, index, stored)
return stored
