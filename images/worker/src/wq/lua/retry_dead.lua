-- retry_dead.lua: give every dead-lettered item a fresh set of attempts.
--
-- KEYS[1] requeue   list of positions that came back
-- KEYS[2] attempts  hash: position -> attempts so far
-- KEYS[3] dead      hash: position -> last error
--
-- Returns the number of items requeued.

local requeue_key, attempts_key, dead_key = KEYS[1], KEYS[2], KEYS[3]

local positions = redis.call('HKEYS', dead_key)
for _, p in ipairs(positions) do
  -- Leasing from the requeue list adds one: 0 makes the next lease attempt 1.
  redis.call('HSET', attempts_key, p, 0)
  redis.call('RPUSH', requeue_key, p)
end
redis.call('DEL', dead_key)
return #positions
