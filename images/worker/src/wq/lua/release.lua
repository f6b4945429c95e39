-- release.lua: hand leased items back without using up an attempt (graceful shutdown).
-- They go to the front of the requeue list, in the order given, so they are leased next.
--
-- KEYS[1] meta      hash: counter 'released'
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: position -> deadline
-- KEYS[4] tokens    hash: position -> lease token
-- KEYS[5] attempts  hash: position -> attempt count
-- ARGV[1] token
-- ARGV[2..] positions
--
-- Returns the number of positions released (those the token still held).

local n = 0
for i = #ARGV, 2, -1 do
  local p = ARGV[i]
  if redis.call('HGET', KEYS[4], p) == ARGV[1] then
    redis.call('HDEL', KEYS[4], p)
    redis.call('ZREM', KEYS[3], p)
    redis.call('HINCRBY', KEYS[5], p, -1)
    redis.call('LPUSH', KEYS[2], p)
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[1], 'released', n)
end
return n
