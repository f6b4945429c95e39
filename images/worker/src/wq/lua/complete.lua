-- complete.lua: record items as done, for positions this lease token still holds.
-- A position whose lease expired (reaped, maybe leased to another worker) is skipped, so a
-- late result never overwrites or doubles the current holder's.
--
-- KEYS[1] meta    hash: counter 'stale'
-- KEYS[2] leases  zset: position -> deadline
-- KEYS[3] tokens  hash: position -> lease token
-- KEYS[4] done    hash: position -> worker id
-- ARGV[1] token   the worker's lease token
-- ARGV[2] worker  worker id recorded in done
-- ARGV[3..] positions
--
-- Returns the positions that were NOT recorded because the token no longer holds them.

local stale = {}
local held = {}
for i = 3, #ARGV do
  local p = ARGV[i]
  if redis.call('HGET', KEYS[3], p) == ARGV[1] then
    held[#held + 1] = p
    redis.call('HSETNX', KEYS[4], p, ARGV[2])
  else
    stale[#stale + 1] = p
  end
end
if #held > 0 then
  redis.call('HDEL', KEYS[3], unpack(held))
  redis.call('ZREM', KEYS[2], unpack(held))
end
if #stale > 0 then
  redis.call('HINCRBY', KEYS[1], 'stale', #stale)
end
return stale
