-- renew.lua: heartbeat. Push the deadline of every position this token still holds.
--
-- KEYS[1] leases  zset: position -> deadline
-- KEYS[2] tokens  hash: position -> lease token
-- ARGV[1] token  ARGV[2] lease_ms
-- ARGV[3..] positions
--
-- Returns the positions the token no longer holds (their leases were lost).

local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local lost = {}
for i = 3, #ARGV do
  local p = ARGV[i]
  if redis.call('HGET', KEYS[2], p) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', deadline, p)
  else
    lost[#lost + 1] = p
  end
end
return lost
