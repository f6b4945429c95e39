-- fail.lua: an attempt at one item failed. Retry it, or dead-letter it once it has used up
-- its attempts. Ignored (returns 'stale') when the token no longer holds the position.
--
-- KEYS[1] meta      hash: counter 'retried'
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: position -> deadline
-- KEYS[4] tokens    hash: position -> lease token
-- KEYS[5] attempts  hash: position -> attempt count
-- KEYS[6] dead      hash: position -> last error
-- KEYS[7] errors    hash: position -> last error
-- ARGV[1] token  ARGV[2] position  ARGV[3] error text  ARGV[4] max_attempts
--
-- Returns 'retry', 'dead' or 'stale'.

local p = ARGV[2]
if redis.call('HGET', KEYS[4], p) ~= ARGV[1] then
  redis.call('HINCRBY', KEYS[1], 'stale', 1)
  return 'stale'
end
redis.call('HDEL', KEYS[4], p)
redis.call('ZREM', KEYS[3], p)
redis.call('HSET', KEYS[7], p, ARGV[3])
local attempts = tonumber(redis.call('HGET', KEYS[5], p) or '0')
if attempts >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[6], p, ARGV[3])
  return 'dead'
end
redis.call('RPUSH', KEYS[2], p)
redis.call('HINCRBY', KEYS[1], 'retried', 1)
return 'retry'
