-- release.lua: hand leased items back without using up an attempt (graceful shutdown).
-- They go to the front of the requeue list, in the order given, so they are leased next.
--
-- KEYS[1] meta      hash: counter 'released' (fields in wq/layout.py)
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: "position:token" -> deadline
-- KEYS[4] solo      hash: position -> token of a lease holding that item alone
-- ARGV[1] token
-- ARGV[2..] positions
--
-- Returns the number of positions released (those the token still held).

local meta_key, requeue_key, leases_key, solo_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token = ARGV[1]
local FIRST_POSITION = 2

local n = 0
for i = #ARGV, FIRST_POSITION, -1 do
  local p = ARGV[i]
  if redis.call('ZREM', leases_key, p .. ':' .. token) == 1 then
    redis.call('HDEL', solo_key, p)
    redis.call('LPUSH', requeue_key, p)
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', meta_key, RELEASED, n)
end
return n
