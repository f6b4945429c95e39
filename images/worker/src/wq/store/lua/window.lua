-- window.lua: a window of consecutive positions of a run, as `wq report` and `wq status
-- --check` read it, in one atomic step: the items, their ledger records and what else is
-- known of each position. Reading a run window by window keeps every call (and the reader's
-- memory) bounded whatever the run's size. Layouts: wq/layout.py.
--
-- KEYS[1] meta      hash: total, kind, range_start, range_step, chunk, seeded, format
-- KEYS[2] items     hash: field -> `chunk` items as JSON joined by newlines (list runs only)
-- KEYS[3] ledger    hash: field -> RECORDS_PER_FIELD packed records
-- KEYS[4] attempts  hash: position -> attempts charged so far
-- KEYS[5] errors    hash: position -> last error of a failed attempt
-- KEYS[6] dead      hash: position -> last error of a dead item
-- ARGV[1] first     first position of the window, a multiple of RECORDS_PER_FIELD
-- ARGV[2] count     positions in the window (fewer are read at the run's end)
--
-- Returns {{total, kind, range_start, range_step, chunk, seeded, format},
--          item fields of the window in order ({} for a range run), ledger fields in order,
--          then per position of the window: attempts, errors, dead (each a list; nil: absent)}

local meta_key, items_key, ledger_key = KEYS[1], KEYS[2], KEYS[3]
local attempts_key, errors_key, dead_key = KEYS[4], KEYS[5], KEYS[6]
local first, count = tonumber(ARGV[1]), tonumber(ARGV[2])

local meta = redis.call('HMGET', meta_key, TOTAL, KIND, RANGE_START, RANGE_STEP, CHUNK, SEEDED,
  FORMAT)
local total = tonumber(meta[1]) or 0
local last = math.min(first + count, total) - 1
-- A sharded run's directory holds no items (its shards do): the reader refuses it.
if last < first or meta[7] == SHARDED_FORMAT then
  return {meta, {}, {}, {}, {}, {}}
end

local function fields_of(per_field)
  local fields = {}
  for f = math.floor(first / per_field), math.floor(last / per_field) do
    fields[#fields + 1] = f
  end
  return fields
end

local items = {}
if meta[2] ~= KIND_RANGE then
  items = redis.call('HMGET', items_key, unpack(fields_of(tonumber(meta[5]))))
end
local ledger = redis.call('HMGET', ledger_key, unpack(fields_of(RECORDS_PER_FIELD)))
local positions = {}
for p = first, last do
  positions[#positions + 1] = p
end
return {
  meta,
  items,
  ledger,
  redis.call('HMGET', attempts_key, unpack(positions)),
  redis.call('HMGET', errors_key, unpack(positions)),
  redis.call('HMGET', dead_key, unpack(positions)),
}
