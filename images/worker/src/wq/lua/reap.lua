-- reap.lua: reclaim expired leases. An expired lease counts as an attempt: the item is
-- retried, or dead-lettered once it has used up its attempts.
--
-- KEYS[1] meta      hash: counter 'retried'
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: "position:token" -> deadline
-- KEYS[4] attempts  hash: position -> attempts so far (absent: 1)
-- KEYS[5] dead      hash: position -> last error
-- KEYS[6] errors    hash: position -> last error
-- ARGV[1] max_attempts  ARGV[2] limit (most leases reclaimed in one call)
--
-- Returns {requeued, dead_lettered}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local max_attempts = tonumber(ARGV[1])
local requeued, dead = 0, 0
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[3], member)
  local p = string.match(member, '^(%d+):')
  local attempts = tonumber(redis.call('HGET', KEYS[4], p) or '1')
  local err = 'lease expired: the worker holding it stopped or lost contact (attempt '
    .. attempts .. ')'
  redis.call('HSET', KEYS[6], p, err)
  if attempts >= max_attempts then
    redis.call('HSET', KEYS[5], p, err)
    dead = dead + 1
  else
    redis.call('HSET', KEYS[4], p, attempts)
    redis.call('RPUSH', KEYS[2], p)
    requeued = requeued + 1
  end
end
if requeued > 0 then
  redis.call('HINCRBY', KEYS[1], 'retried', requeued)
end
return {requeued, dead}
