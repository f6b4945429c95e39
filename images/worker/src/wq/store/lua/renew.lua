-- renew.lua: heartbeat. Push the deadline of every position this token still holds.
--
-- KEYS[1] leases  zset: "position:token" -> deadline
-- ARGV[1] token     the worker's lease token
-- ARGV[2] lease_ms  new lease length from now, in milliseconds
-- ARGV[3..] positions
--
-- Returns the positions the token no longer holds (their leases were lost).

local leases_key = KEYS[1]
local token, lease_ms = ARGV[1], tonumber(ARGV[2])
local FIRST_POSITION = 3

local deadline = now_ms() + lease_ms
local members = {}
for i = FIRST_POSITION, #ARGV do
  members[#members + 1] = ARGV[i] .. ':' .. token
end
local scores = redis.call('ZMSCORE', leases_key, unpack(members))
local renew, lost = {}, {}
for i, score in ipairs(scores) do
  if score then
    renew[#renew + 1] = deadline
    renew[#renew + 1] = members[i]
  else
    lost[#lost + 1] = ARGV[i + FIRST_POSITION - 1]
  end
end
if #renew > 0 then
  redis.call('ZADD', leases_key, 'XX', unpack(renew))
end
return lost
