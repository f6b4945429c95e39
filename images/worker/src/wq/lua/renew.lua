-- renew.lua: heartbeat. Push the deadline of every position this token still holds.
--
-- KEYS[1] leases  zset: "position:token" -> deadline
-- ARGV[1] token  ARGV[2] lease_ms
-- ARGV[3..] positions
--
-- Returns the positions the token no longer holds (their leases were lost).

local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local members = {}
for i = 3, #ARGV do
  members[#members + 1] = ARGV[i] .. ':' .. ARGV[1]
end
local scores = redis.call('ZMSCORE', KEYS[1], unpack(members))
local renew, lost = {}, {}
for i, score in ipairs(scores) do
  if score then
    renew[#renew + 1] = deadline
    renew[#renew + 1] = members[i]
  else
    lost[#lost + 1] = ARGV[i + 2]
  end
end
if #renew > 0 then
  redis.call('ZADD', KEYS[1], 'XX', unpack(renew))
end
return lost
