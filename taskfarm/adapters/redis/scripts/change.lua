-- Applies one change to many tasks (`change_task`), all or none of them past the run.
-- ARGV: the change (`change_in`), the uuid of the worker making it or '' for none, then the
-- tasks' indices, distinct.
-- Returns 'no-run'; {'no-task', number of tasks, index} for an index past the run, changing
-- nothing; else the indices of the tasks `change_task` refused, each left as it was.

local change, by = change_in(1), ARGV[6] ~= '' and ARGV[6] or nil
local size, seconds, max_attempts =
  unpack(redis.call('HMGET', run, 'num_tasks', 'lease_seconds', 'max_attempts'))
if not size then
  return 'no-run'
end
for i = 7, #ARGV do
  if tonumber(ARGV[i]) >= tonumber(size) then
    return {'no-task', size, ARGV[i]}
  end
end
local refused = {}
for i = 7, #ARGV do
  if not change_task(ARGV[i], change, by, seconds, max_attempts) then
    refused[#refused + 1] = ARGV[i]
  end
end
return refused
