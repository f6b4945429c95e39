-- reap.lua: reclaim expired leases. An expired lease counts as an attempt: the item is
-- retried, or dead-lettered once it has used up its attempts.
--
-- KEYS[1] meta      hash: counter 'retried' (fields in wq/layout.py)
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: "position:token" -> deadline
-- KEYS[4] attempts  hash: position -> attempts so far (absent: 1)
-- KEYS[5] dead      hash: position -> last error
-- KEYS[6] errors    hash: position -> last error
-- ARGV[1] max_attempts  ARGV[2] limit (most leases reclaimed in one call)
--
-- Returns {requeued, dead_lettered}.

local meta_key, requeue_key, leases_key = KEYS[1], KEYS[2], KEYS[3]
local attempts_key, dead_key, errors_key = KEYS[4], KEYS[5], KEYS[6]
local max_attempts, limit = tonumber(ARGV[1]), tonumber(ARGV[2])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', leases_key, '-inf', now, 'LIMIT', 0, limit)
local requeued, dead = 0, 0
for _, member in ipairs(expired) do
  redis.call('ZREM', leases_key, member)
  local p = string.match(member, '^(%d+):')
  local attempts = tonumber(redis.call('HGET', attempts_key, p) or '1')
  local err = 'lease expired: the worker holding it stopped or lost contact (attempt '
    .. attempts .. ')'
  redis.call('HSET', errors_key, p, err)
  if attempts >= max_attempts then
    redis.call('HSET', dead_key, p, err)
    dead = dead + 1
  else
    redis.call('HSET', attempts_key, p, attempts)
    redis.call('RPUSH', requeue_key, p)
    requeued = requeued + 1
  end
end
if requeued > 0 then
  redis.call('HINCRBY', meta_key, 'retried', requeued)
end
return {requeued, dead}
