-- fail.lua: an attempt at one item failed. Retry it, or dead-letter it once it has used up
-- its attempts, with its ledger record (wq/layout.py: RECORD_FORMAT, 32 per field of 16 bytes).
-- Ignored (returns 'stale') when the token no longer holds the position. A known duration is
-- counted in the durations histogram (wq/layout.py), whether the item is retried or dead.
--
-- KEYS[1] meta      hash: counters 'retried', 'stale', 'workers' (fields in wq/layout.py)
-- KEYS[2] requeue   list of positions that came back
-- KEYS[3] leases    zset: "position:token" -> deadline
-- KEYS[4] attempts  hash: position -> attempts charged so far (absent: 0)
-- KEYS[5] dead      hash: position -> last error
-- KEYS[6] errors    hash: position -> last error
-- KEYS[7] solo      hash: position -> token of a lease holding that item alone
-- KEYS[8] ledger    hash: field -> 32 packed records
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
local attempts_key, dead_key, errors_key, solo_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local ledger_key, workers_key, durations_key = KEYS[8], KEYS[9], KEYS[10]
local token, p, err, max_attempts = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local worker, ms = ARGV[5], tonumber(ARGV[6])
local PER_FIELD, WIDTH, FORMAT = 32, 16, '>BHI4I3I6'
local DEAD, UNKNOWN_MS = 2, 4294967295
-- Upper bounds (ms) of the durations histogram's buckets: wq/layout.py DURATION_BUCKETS_S.
local BUCKETS_MS = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
  120000, 300000, 600000, 1800000, 3600000}

local function bucket_of(ms)
  for i = 1, #BUCKETS_MS do
    if ms <= BUCKETS_MS[i] then
      return i - 1
    end
  end
  return #BUCKETS_MS
end

if redis.call('ZREM', leases_key, p .. ':' .. token) == 0 then
  redis.call('HINCRBY', meta_key, 'stale', 1)
  return 'stale'
end
redis.call('HDEL', solo_key, p)
redis.call('HSET', errors_key, p, err)
if ms ~= UNKNOWN_MS then
  redis.call('HINCRBY', durations_key, bucket_of(ms), 1)
  redis.call('HINCRBY', durations_key, 'sum_ms', ms)
end
local attempts = (tonumber(redis.call('HGET', attempts_key, p)) or 0) + 1
if attempts >= max_attempts then
  redis.call('HSET', dead_key, p, err)
  local number = 0
  if worker ~= '' then
    number = redis.call('HGET', workers_key, worker)
    if not number then
      number = redis.call('HINCRBY', meta_key, 'workers', 1)
      redis.call('HSET', workers_key, worker, number)
    end
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local n = tonumber(p)
  local f, at = math.floor(n / PER_FIELD), (n % PER_FIELD) * WIDTH
  local blob = redis.call('HGET', ledger_key, f) or string.rep('\0', PER_FIELD * WIDTH)
  local record = struct.pack(FORMAT, DEAD, attempts, ms, tonumber(number), now)
  redis.call('HSET', ledger_key, f,
    string.sub(blob, 1, at) .. record .. string.sub(blob, at + WIDTH + 1))
  return 'dead'
end
redis.call('HSET', attempts_key, p, attempts)
redis.call('RPUSH', requeue_key, p)
redis.call('HINCRBY', meta_key, 'retried', 1)
return 'retry'
