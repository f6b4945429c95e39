-- lib/ledger.lua: what the scripts that write the ledger and the durations histogram share
-- (wq/store/layout.py describes both). Not a script: wq.store.scripts puts the definitions a
-- script names in its prelude, after the constants of layout.py they name.

-- A record's worth of zeros: no record (its position is pending or in flight).
local NO_RECORD = string.rep('\0', RECORD_WIDTH)

-- Write position p's record (RECORD_WIDTH bytes; NO_RECORD clears it) into its ledger field,
-- rewriting the field whole. A field not written yet starts as all zeros, and is left unwritten
-- by a record cleared.
local function put_record(ledger_key, p, record)
  local n = tonumber(p)
  local f, at = math.floor(n / RECORDS_PER_FIELD), (n % RECORDS_PER_FIELD) * RECORD_WIDTH
  local blob = redis.call('HGET', ledger_key, f)
  if not blob then
    if record == NO_RECORD then
      return
    end
    blob = string.rep('\0', FIELD_WIDTH)
  end
  redis.call('HSET', ledger_key, f,
    string.sub(blob, 1, at) .. record .. string.sub(blob, at + RECORD_WIDTH + 1))
end

-- The number of a worker id in ledger records, numbering the id if it has none yet.
local function worker_number(meta_key, workers_key, worker)
  local number = redis.call('HGET', workers_key, worker)
  if not number then
    number = redis.call('HINCRBY', meta_key, WORKERS, 1)
    redis.call('HSET', workers_key, worker, number)
  end
  return tonumber(number)
end

-- The field of the durations histogram that counts an attempt of `ms` milliseconds: its
-- first bucket whose bound holds it (bounds are inclusive, as Prometheus' `le`), else +Inf's.
local function duration_bucket(ms)
  for i = 1, #DURATION_BUCKETS_MS do
    if ms <= DURATION_BUCKETS_MS[i] then
      return i - 1
    end
  end
  return #DURATION_BUCKETS_MS
end
