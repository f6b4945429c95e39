-- release.lua: hand leased items back without using up an attempt (graceful shutdown).
-- They go to the front of the requeue list, in the order given, so they are leased next.
--
-- KEYS[1] meta      hash: counter 'released'
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: "position:token" -> deadline
-- KEYS[4] attempts  hash: position -> attempts so far (absent: 1)
-- ARGV[1] token
-- ARGV[2..] positions
--
-- Returns the number of positions released (those the token still held).

local n = 0
for i = #ARGV, 2, -1 do
  local p = ARGV[i]
  if redis.call('ZREM', KEYS[3], p .. ':' .. ARGV[1]) == 1 then
    -- Leasing it again from the requeue list adds one, so take this attempt back; a first
    -- attempt (absent) stays absent and becomes 1 again.
    if redis.call('HEXISTS', KEYS[4], p) == 1 then
      redis.call('HINCRBY', KEYS[4], p, -1)
    end
    redis.call('LPUSH', KEYS[2], p)
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[1], 'released', n)
end
return n
