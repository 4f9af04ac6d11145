-- Applies `Task.restarted` to every stored task of the run and recounts its counters.
-- ARGV: '1' to restart everything, '0' to redo unfinished work only; the progress of a
-- finished task. Returns 'no-run' or 'ok'. Takes time in proportion to the touched tasks.
local everything, full = ARGV[1] == '1', tonumber(ARGV[2])
if redis.call('EXISTS', run) == 0 then
  return 'no-run'
end

redis.call('DEL', waiting, deferred, computing, failed)
if everything then
  redis.call('DEL', attempts)
end
local count = {w = 0, c = 0, d = 0, f = 0}
local stored = redis.call('HGETALL', tasks)
for i = 1, #stored, 2 do
  local index, task = stored[i], decode(stored[i + 1])
  if everything then
    task = decode(nil)
  elseif tonumber(task.progress) < full or task.state == 'f' then
    task.state, task.worker, task.attempts, task.lease = 'w', '', '0', ''
  end
  local restarted = encode(task)
  if restarted ~= stored[i + 1] then
    redis.call('HSET', tasks, index, restarted)
  end
  if task.state == 'w' then
    redis.call('ZADD', queue_of(task), index, index)
  elseif task.state == 'c' then
    redis.call('ZADD', computing, lease_score(task), index)
  elseif task.state == 'f' then
    redis.call('ZADD', failed, index, index)
  end
  count[task.state] = count[task.state] + 1
end

redis.call('HSET', run, 'computing', count.c, 'done', count.d, 'failed', count.f)
if everything then
  redis.call('HSET', run, 'progress', 0)
end
return 'ok'
