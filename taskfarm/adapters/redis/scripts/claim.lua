-- Hands out the tasks of several claims on one run, in turn, as one claim after another would:
-- each task by `next_claim` and `Task.claimed_by`, requeued tasks first, lowest index first,
-- then the lowest untouched indices past the frontier (skipping tasks written out of order),
-- then deferred tasks, lowest index first.
-- ARGV: now in microseconds, then a worker uuid and a count for each claim.
-- Returns 'no-run', or for each claim {index, stored task, index, stored task, ...}.
local now = ARGV[1]
local size, start, seconds = unpack(redis.call('HMGET', run, 'num_tasks', 'frontier',
  'lease_seconds'))
if not size then
  return 'no-run'
end

local lease = lease_expiry(now, seconds)
size = tonumber(size)
local frontier = tonumber(start)
local handed = 0

local function claim(worker, count)
  local claimed = {}
  local function hand_out(index, task)
    task.state, task.worker, task.lease, task.started = 'c', worker, lease, now
    task.attempts = whole(tonumber(task.attempts) + 1)
    local stored = encode(task)
    redis.call('HSET', tasks, index, stored)
    redis.call('ZADD', computing, lease_score(task), index)
    claimed[#claimed + 1] = index
    claimed[#claimed + 1] = stored
  end

  -- Read first, each removed once its task is written: a claim's first write is then a task's,
  -- which Redis refuses at its memory limit. Not a removal, which it lets through, and every
  -- write after it, since a script cannot stop half-way.
  local function hand_out_first(queue, wanted)
    for _, index in ipairs(redis.call('ZRANGE', queue, 0, wanted - 1)) do
      hand_out(index, decode(redis.call('HGET', tasks, index)))
      redis.call('ZREM', queue, index)
    end
  end

  hand_out_first(waiting, count)
  local wanted = 2 * count
  while #claimed < wanted and frontier < size do
    local index = whole(frontier)
    frontier = frontier + 1
    if redis.call('HEXISTS', tasks, index) == 0 then
      hand_out(index, decode(nil))
    end
  end
  if #claimed < wanted then
    hand_out_first(deferred, (wanted - #claimed) / 2)
  end
  handed = handed + #claimed / 2
  return claimed
end

local replies = {}
for i = 2, #ARGV, 2 do
  replies[#replies + 1] = claim(ARGV[i], tonumber(ARGV[i + 1]))
end

-- Past the last task the frontier stays at the end: the stored tasks it skipped need not be
-- looked at again by every later claim.
if whole(frontier) ~= start then
  redis.call('HSET', run, 'frontier', whole(frontier))
end
if handed > 0 then
  redis.call('HINCRBY', run, 'computing', whole(handed))
end
return replies
