-- retry_dead.lua: give every dead-lettered item a fresh set of attempts.
--
-- KEYS[1] requeue   list of positions that came back
-- KEYS[2] attempts  hash: position -> attempts so far
-- KEYS[3] dead      hash: position -> last error
--
-- Returns the number of items requeued.

local positions = redis.call('HKEYS', KEYS[3])
for _, p in ipairs(positions) do
  -- Leasing from the requeue list adds one: 0 makes the next lease attempt 1.
  redis.call('HSET', KEYS[2], p, 0)
  redis.call('RPUSH', KEYS[1], p)
end
redis.call('DEL', KEYS[3])
return #positions
