-- release.lua: hand leased items back without using up an attempt (graceful shutdown).
-- They go to the front of the requeue list, in the order given, so they are leased next.
--
-- KEYS[1] meta      hash: counters 'released', 'in_flight' (fields in wq/layout.py)
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: token -> deadline (ms)
-- KEYS[4] batches   hash: token -> its batch record (wq/layout.py)
-- KEYS[5] ledger    hash: field -> RECORDS_PER_FIELD packed records (a done item is not held)
-- ARGV[1] token
-- ARGV[2..] positions
--
-- Returns the number of positions released (those the token still held).

local meta_key, requeue_key, leases_key, batches_key, ledger_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token = ARGV[1]
local FIRST_POSITION = 2

local batch = batch_of(batches_key, token)
if not batch then
  return 0
end
local numbers = {}
for i = FIRST_POSITION, #ARGV do
  numbers[#numbers + 1] = tonumber(ARGV[i])
end
local held = batch_holds(ledger_key, batch, numbers)
local released = {}
for j = #held, 1, -1 do
  local p = ARGV[held[j] + FIRST_POSITION - 1]
  redis.call('LPUSH', requeue_key, p)
  released[#released + 1] = p
end
if #held > 0 then
  batch_settle(meta_key, leases_key, batches_key, token, batch, #held, released)
  redis.call('HINCRBY', meta_key, RELEASED, #held)
end
return #held
