-- retry_dead.lua: give dead-lettered items a fresh set of attempts, one bounded chunk per
-- call: the caller walks the dead hash with an HSCAN cursor, from '0' until '0' comes back,
-- so no call grows with the run. Workers may run in between: the cursor stays valid while
-- the hash changes, every item dead when the walk started is requeued, and an item HSCAN
-- returns twice is requeued once (only the call that removes it from dead requeues it).
-- Each requeued item's ledger record is cleared (wq/layout.py): it is pending again.
--
-- KEYS[1] requeue   list of positions that came back
-- KEYS[2] attempts  hash: position -> attempts so far
-- KEYS[3] dead      hash: position -> last error
-- KEYS[4] ledger    hash: field -> RECORDS_PER_FIELD packed records
-- ARGV[1] cursor    HSCAN cursor: '0' to start
-- ARGV[2] count     HSCAN COUNT: about how many items one call requeues
--
-- Returns {next_cursor ('0': the walk is complete), number of items requeued}.

local requeue_key, attempts_key, dead_key, ledger_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cursor, count = ARGV[1], ARGV[2]

local scan = redis.call('HSCAN', dead_key, cursor, 'COUNT', count)
local fields = scan[2]
local requeued = 0
for i = 1, #fields, 2 do
  local p = fields[i]
  if redis.call('HDEL', dead_key, p) == 1 then
    -- Leasing from the requeue list adds one: 0 makes the next lease attempt 1.
    redis.call('HSET', attempts_key, p, 0)
    redis.call('RPUSH', requeue_key, p)
    put_record(ledger_key, p, NO_RECORD)
    requeued = requeued + 1
  end
end
return {scan[1], requeued}
