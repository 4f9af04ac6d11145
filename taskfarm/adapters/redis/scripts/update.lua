-- Applies `Task.changed` to one task (`change_task`).
-- ARGV: index, the change (`change_in`), and, when a worker makes the change, that worker's
-- uuid.
-- Returns 'no-run'; {'no-task', number of tasks} for an index past the run; {'conflict',
-- stored task}, changing nothing, when `change_task` refuses; else the task as stored.

local index, change, by = ARGV[1], change_in(2), ARGV[7]
local size, seconds, max_attempts =
  unpack(redis.call('HMGET', run, 'num_tasks', 'lease_seconds', 'max_attempts'))
if not size then
  return 'no-run'
end
if tonumber(index) >= tonumber(size) then
  return {'no-task', size}
end
local stored, refused = change_task(index, change, by, seconds, max_attempts)
if not stored then
  return {'conflict', refused}
end
return stored
