-- reap.lua: reclaim expired leases. A lease that held one item alone (solo) charges that item
-- an attempt: its worker surely died running it. It is retried alone, or dead-lettered once
-- it has used up its attempts. The items of an expired lease of several are not charged (most
-- were never started): they go to the suspects list, from which each is leased alone, so a
-- pod-killing item is isolated without costing its batch-mates anything. A dead-lettered
-- item gets its ledger record (wq/layout.py: RECORD_FORMAT), with
-- no worker and no duration: its worker died.
-- A restart of Redis counts as a renewal of every lease: until the server has been up for
-- GRACE_MS, nothing is reclaimed, so that workers cut off while it was down (alive, their items
-- running) renew their leases first, rather than have their items charged and run again.
--
-- KEYS[1] meta      hash: counters 'retried', 'in_flight', and last_finished_ms (wq/layout.py)
-- KEYS[2] suspects  list of positions to lease one at a time
-- KEYS[3] leases    zset: token -> deadline (ms)
-- KEYS[4] attempts  hash: position -> attempts charged so far (absent: 0)
-- KEYS[5] dead      hash: position -> last error
-- KEYS[6] errors    hash: position -> last error
-- KEYS[7] batches   hash: token -> its batch record (wq/layout.py)
-- KEYS[8] deaths    hash: position -> times its worker died while running it alone
-- KEYS[9] ledger    hash: field -> RECORDS_PER_FIELD packed records
-- ARGV[1] max_attempts  attempts an item gets before it is dead-lettered
-- ARGV[2] limit         about the most items reclaimed in one call (whole leases are)
-- ARGV[3] grace_ms      how long after a restart of Redis to reclaim nothing (0: reclaim now)
--
-- Returns {requeued, dead_lettered}, or {0, 0, 1} when expired leases were held back (grace).

local meta_key, suspects_key, leases_key, attempts_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, errors_key, batches_key, deaths_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local ledger_key = KEYS[9]
local max_attempts, limit, grace_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', leases_key, '-inf', now, 'LIMIT', 0, limit)
if #expired > 0 and grace_ms > 0 and server_started_ms(now) + grace_ms > now then
  return {0, 0, 1}
end
local requeued, dead, reclaimed = 0, 0, 0
for _, token in ipairs(expired) do
  if reclaimed >= limit then
    break  -- the rest in the next call
  end
  redis.call('ZREM', leases_key, token)
  local batch = batch_of(batches_key, token)
  redis.call('HDEL', batches_key, token)
  local held = {}
  local solo = false
  if batch then
    local numbers = batch_positions(batch)
    for _, i in ipairs(batch_holds(ledger_key, batch, numbers)) do
      held[#held + 1] = numbers[i]
    end
    solo = batch_size(batch) == 1
  end
  reclaimed = reclaimed + #held
  if #held > 0 then
    redis.call('HINCRBY', meta_key, IN_FLIGHT, -#held)
  end
  if solo and #held == 1 then
    local p = held[1]
    local died = redis.call('HINCRBY', deaths_key, p, 1)
    local attempts = (tonumber(redis.call('HGET', attempts_key, p)) or 0) + 1
    local err = 'its worker died ' .. died .. (died == 1 and ' time' or ' times')
      .. ' while processing it (its lease expired)'
    redis.call('HSET', errors_key, p, err)
    if attempts >= max_attempts then
      redis.call('HSET', dead_key, p, err)
      put_record(ledger_key, p,
        struct.pack(RECORD_FORMAT, DEAD, attempts, UNKNOWN_MS, NO_WORKER, now))
      redis.call('HSET', meta_key, LAST_FINISHED_MS, now)
      dead = dead + 1
    else
      redis.call('HSET', attempts_key, p, attempts)
      redis.call('RPUSH', suspects_key, p)
      requeued = requeued + 1
    end
  elseif #held > 0 then
    redis.call('RPUSH', suspects_key, unpack(held))
    requeued = requeued + #held
  end
end
if requeued > 0 then
  redis.call('HINCRBY', meta_key, RETRIED, requeued)
end
return {requeued, dead}
