-- Hands up to ARGV[3] tasks to a worker, one `next_claim` and `Task.claimed_by` after another:
-- requeued tasks first, lowest index first, then the lowest untouched indices past the
-- frontier (skipping tasks written out of order).
-- ARGV: worker uuid, now in microseconds, count.
-- Returns 'no-run', or {index, stored task, index, stored task, ...} in the order claimed.
local worker, now, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local size, start, seconds = unpack(redis.call('HMGET', run, 'num_tasks', 'frontier',
  'lease_seconds'))
if not size then
  return 'no-run'
end

local lease = lease_expiry(now, seconds)
local claimed = {}
local function hand_out(index, task)
  task.state, task.worker, task.lease = 'c', worker, lease
  task.attempts = whole(tonumber(task.attempts) + 1)
  local stored = encode(task)
  redis.call('HSET', tasks, index, stored)
  redis.call('ZADD', computing, lease_score(task), index)
  claimed[#claimed + 1] = index
  claimed[#claimed + 1] = stored
end

local requeued = redis.call('ZPOPMIN', waiting, count)
for i = 1, #requeued, 2 do
  hand_out(requeued[i], decode(redis.call('HGET', tasks, requeued[i])))
end

local wanted = 2 * count
if #claimed < wanted then
  local frontier = tonumber(start)
  size = tonumber(size)
  while #claimed < wanted and frontier < size do
    local index = whole(frontier)
    frontier = frontier + 1
    if redis.call('HEXISTS', tasks, index) == 0 then
      hand_out(index, decode(nil))
    end
  end
  -- Past the last task the frontier stays at the end: the stored tasks it skipped need not be
  -- looked at again by every later claim.
  if whole(frontier) ~= start then
    redis.call('HSET', run, 'frontier', whole(frontier))
  end
end

if #claimed > 0 then
  redis.call('HINCRBY', run, 'computing', whole(#claimed / 2))
end
return claimed
