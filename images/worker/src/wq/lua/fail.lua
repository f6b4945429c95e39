-- fail.lua: an attempt at one item failed. Retry it, or dead-letter it once it has used up
-- its attempts. Ignored (returns 'stale') when the token no longer holds the position.
--
-- KEYS[1] meta      hash: counter 'retried'
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: "position:token" -> deadline
-- KEYS[4] attempts  hash: position -> attempts so far (absent: 1)
-- KEYS[5] dead      hash: position -> last error
-- KEYS[6] errors    hash: position -> last error
-- ARGV[1] token  ARGV[2] position  ARGV[3] error text  ARGV[4] max_attempts
--
-- Returns 'retry', 'dead' or 'stale'.

local p = ARGV[2]
if redis.call('ZREM', KEYS[3], p .. ':' .. ARGV[1]) == 0 then
  redis.call('HINCRBY', KEYS[1], 'stale', 1)
  return 'stale'
end
redis.call('HSET', KEYS[6], p, ARGV[3])
local attempts = tonumber(redis.call('HGET', KEYS[4], p) or '1')
if attempts >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[5], p, ARGV[3])
  return 'dead'
end
redis.call('HSET', KEYS[4], p, attempts)
redis.call('RPUSH', KEYS[2], p)
redis.call('HINCRBY', KEYS[1], 'retried', 1)
return 'retry'
