-- retry_dead.lua: give every dead-lettered item a fresh set of attempts.
--
-- KEYS[1] requeue   list of positions that came back
-- KEYS[2] attempts  hash: position -> attempt count
-- KEYS[3] dead      hash: position -> last error
--
-- Returns the number of items requeued.

local positions = redis.call('HKEYS', KEYS[3])
for _, p in ipairs(positions) do
  redis.call('HDEL', KEYS[2], p)
  redis.call('RPUSH', KEYS[1], p)
end
redis.call('DEL', KEYS[3])
return #positions
