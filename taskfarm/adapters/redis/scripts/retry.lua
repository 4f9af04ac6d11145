-- Applies `Task.retried` to the run's failed tasks (ARGV empty) or to its failed and done
-- tasks among the indices in ARGV; the others are left alone. Returns 'no-run', or how many
-- tasks went back to the queue. Takes time in proportion to the tasks it looks at.
if redis.call('EXISTS', run) == 0 then
  return 'no-run'
end

local chosen = ARGV
if #chosen == 0 then
  chosen = redis.call('ZRANGE', failed, 0, -1)
end

local retried, done, spent, progress = 0, 0, 0, 0
local seen = {}
for _, index in ipairs(chosen) do
  local stored = not seen[index] and redis.call('HGET', tasks, index)
  seen[index] = true
  local task = stored and decode(stored)
  if task and (task.state == 'f' or task.state == 'd') then
    local state = task.state
    if state == 'f' then spent = spent + 1 else done = done + 1 end
    progress = progress + tonumber(task.progress)
    task.state, task.progress, task.worker, task.attempts, task.lease = 'w', '0', '', '0', ''
    store(index, task, state)
    retried = retried + 1
  end
end

for counter, moved in pairs({failed = spent, done = done, progress = progress}) do
  if moved ~= 0 then
    redis.call('HINCRBY', run, counter, whole(-moved))
  end
end
return retried
