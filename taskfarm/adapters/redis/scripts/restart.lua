-- Restarts a run: with ARGV[1] = '1' every touched task goes back to waiting at 0%; otherwise
-- only tasks under 100% go back to waiting, keeping their progress.
-- KEYS: run, tasks, waiting.  ARGV: '1' or '0', the progress of a finished task.
-- Returns 'no-run' or 'ok'. Takes time in proportion to the run's touched tasks.
local run, tasks, waiting = KEYS[1], KEYS[2], KEYS[3]
local everything, full = ARGV[1] == '1', tonumber(ARGV[2])
if redis.call('EXISTS', run) == 0 then
  return 'no-run'
end

local computing, done = 0, 0
local stored = redis.call('HGETALL', tasks)
for i = 1, #stored, 2 do
  local index = stored[i]
  local state, progress, worker = string.match(stored[i + 1], '^(%a),(%d+),(.*)$')
  if everything then
    state, progress, worker = 'w', '0', ''
  elseif tonumber(progress) < full then
    state, worker = 'w', ''
  end
  redis.call('HSET', tasks, index, state .. ',' .. progress .. ',' .. worker)
  if state == 'w' then
    redis.call('ZADD', waiting, index, index)
  elseif state == 'c' then
    computing = computing + 1
  else
    done = done + 1
  end
end

redis.call('HSET', run, 'computing', computing, 'done', done)
if everything then
  redis.call('HSET', run, 'progress', 0)
end
return 'ok'
