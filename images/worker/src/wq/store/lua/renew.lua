-- renew.lua: heartbeat. Push the deadline of every lease these tokens still hold: one write
-- per batch, whatever its size.
--
-- KEYS[1] leases    zset: token -> deadline (ms)
-- ARGV[1] lease_ms  new lease length from now, in milliseconds
-- ARGV[2..] tokens
--
-- Returns the tokens that no longer hold a lease (theirs expired and was reaped, or every
-- position of it is done, failed or released).

local leases_key = KEYS[1]
local lease_ms = tonumber(ARGV[1])
local FIRST_TOKEN = 2

local deadline = now_ms() + lease_ms
local tokens = {}
for i = FIRST_TOKEN, #ARGV do
  tokens[#tokens + 1] = ARGV[i]
end
local scores = redis.call('ZMSCORE', leases_key, unpack(tokens))
local renew, lost = {}, {}
for i, score in ipairs(scores) do
  if score then
    renew[#renew + 1] = deadline
    renew[#renew + 1] = tokens[i]
  else
    lost[#lost + 1] = tokens[i]
  end
end
if #renew > 0 then
  redis.call('ZADD', leases_key, 'XX', unpack(renew))
end
return lost
