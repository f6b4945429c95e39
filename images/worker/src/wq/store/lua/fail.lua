-- fail.lua: an attempt at one item failed. Retry it, or dead-letter it once it has used up
-- its attempts, with its ledger record (wq/layout.py: RECORD_FORMAT).
-- Ignored (returns 'stale') when the token no longer holds the position (lib/batches.lua). A known duration is
-- counted in the durations histogram (wq/layout.py), whether the item is retried or dead.
--
-- KEYS[1] meta      hash: counters 'retried', 'stale', 'workers', 'in_flight', and
--                   last_finished_ms (wq/layout.py)
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: token -> deadline (ms)
-- KEYS[4] attempts  hash: position -> attempts charged so far (absent: 0)
-- KEYS[5] dead      hash: position -> last error
-- KEYS[6] errors    hash: position -> last error
-- KEYS[7] batches   hash: token -> its batch record (wq/layout.py)
-- KEYS[8] ledger    hash: field -> RECORDS_PER_FIELD packed records
-- KEYS[9] workers   hash: worker id -> its number in records
-- KEYS[10] durations hash: bucket -> attempts, and sum_ms (wq/layout.py)
-- ARGV[1] token         the worker's lease token
-- ARGV[2] p             the item's position
-- ARGV[3] err           error text
-- ARGV[4] max_attempts  attempts an item gets before it is dead-lettered
-- ARGV[5] worker        worker id ('': not known)
-- ARGV[6] ms            milliseconds the attempt took (UNKNOWN_MS: not known)
--
-- Returns 'retry', 'dead' or 'stale'.

local meta_key, requeue_key, leases_key = KEYS[1], KEYS[2], KEYS[3]
local attempts_key, dead_key, errors_key, batches_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local ledger_key, workers_key, durations_key = KEYS[8], KEYS[9], KEYS[10]
local token, p, err, max_attempts = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local worker, ms = ARGV[5], tonumber(ARGV[6])

local batch = batch_of(batches_key, token)
if not batch or #batch_holds(ledger_key, batch, {tonumber(p)}) == 0 then
  redis.call('HINCRBY', meta_key, STALE, 1)
  return 'stale'
end
batch_settle(meta_key, leases_key, batches_key, token, batch, 1, {p})
redis.call('HSET', errors_key, p, err)
if ms ~= UNKNOWN_MS then
  redis.call('HINCRBY', durations_key, duration_bucket(ms), 1)
  redis.call('HINCRBY', durations_key, DURATION_SUM_MS, ms)
end
local attempts = (tonumber(redis.call('HGET', attempts_key, p)) or 0) + 1
if attempts >= max_attempts then
  redis.call('HSET', dead_key, p, err)
  local number = NO_WORKER
  if worker ~= '' then
    number = worker_number(meta_key, workers_key, worker)
  end
  local now = now_ms()
  put_record(ledger_key, p, struct.pack(RECORD_FORMAT, DEAD, attempts, ms, number, now))
  redis.call('HSET', meta_key, LAST_FINISHED_MS, now)
  return 'dead'
end
redis.call('HSET', attempts_key, p, attempts)
redis.call('RPUSH', requeue_key, p)
redis.call('HINCRBY', meta_key, RETRIED, 1)
return 'retry'
