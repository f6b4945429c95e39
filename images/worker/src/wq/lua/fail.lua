-- fail.lua: an attempt at one item failed. Retry it, or dead-letter it once it has used up
-- its attempts. Ignored (returns 'stale') when the token no longer holds the position.
--
-- KEYS[1] meta      hash: counters 'retried', 'stale' (fields in wq/layout.py)
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: "position:token" -> deadline
-- KEYS[4] attempts  hash: position -> attempts charged so far (absent: 0)
-- KEYS[5] dead      hash: position -> last error
-- KEYS[6] errors    hash: position -> last error
-- KEYS[7] solo      hash: position -> token of a lease holding that item alone
-- ARGV[1] token  ARGV[2] position  ARGV[3] error text  ARGV[4] max_attempts
--
-- Returns 'retry', 'dead' or 'stale'.

local meta_key, requeue_key, leases_key = KEYS[1], KEYS[2], KEYS[3]
local attempts_key, dead_key, errors_key, solo_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local token, p, err, max_attempts = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

if redis.call('ZREM', leases_key, p .. ':' .. token) == 0 then
  redis.call('HINCRBY', meta_key, 'stale', 1)
  return 'stale'
end
redis.call('HDEL', solo_key, p)
redis.call('HSET', errors_key, p, err)
local attempts = (tonumber(redis.call('HGET', attempts_key, p)) or 0) + 1
if attempts >= max_attempts then
  redis.call('HSET', dead_key, p, err)
  return 'dead'
end
redis.call('HSET', attempts_key, p, attempts)
redis.call('RPUSH', requeue_key, p)
redis.call('HINCRBY', meta_key, 'retried', 1)
return 'retry'
