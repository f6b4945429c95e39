-- complete.lua: record items as done, for positions this lease token still holds: each one's
-- ledger record (attempts, duration, worker, time) and its output, in the same step. A
-- position whose lease expired (reaped, maybe leased to another worker) is skipped, output and
-- all, so a late result never overwrites or doubles the current holder's.
-- Records are laid out as wq/layout.py describes (RECORD_FORMAT): each is the state byte, the
-- ATTEMPT_FORMAT bytes the worker sent for the item, and a tail of worker number and time
-- shared by the whole call (RECORD_TAIL_FORMAT). Each known duration is counted in the durations
-- histogram (wq/layout.py), one HINCRBY per bucket the call touches.
--
-- KEYS[1] meta      hash: counters 'done', 'stale', 'workers' (fields in wq/layout.py)
-- KEYS[2] leases    zset: "position:token" -> deadline
-- KEYS[3] ledger    hash: field -> RECORDS_PER_FIELD packed records
-- KEYS[4] outputs   hash: position -> output as JSON text
-- KEYS[5] attempts  hash: position -> attempts charged so far (absent: 0)
-- KEYS[6] workers   hash: worker id -> its number in records
-- KEYS[7] solo      hash: position -> token of a lease holding that item alone
-- KEYS[8] durations hash: bucket -> attempts, and sum_ms (wq/layout.py)
-- ARGV[1] token     the worker's lease token
-- ARGV[2] worker    worker id, recorded by its number
-- ARGV[3] known     '1': the attempt numbers below are known; '0': count them here
-- ARGV[4] per_item  ATTEMPT_FORMAT (wq/layout.py) per position, in the order of the
--                   positions: attempt number and milliseconds the attempt took (UNKNOWN_MS:
--                   not known)
-- ARGV[5] N         how many positions follow
-- ARGV[6..5+N]      positions
-- ARGV[6+N..]       position, output pairs: the outputs (JSON text) of positions that have one
--
-- Returns the positions that were NOT recorded because the token no longer holds them.

local meta_key, leases_key, ledger_key, outputs_key, attempts_key, workers_key, solo_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local durations_key = KEYS[8]
local token, worker, known, per_item = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local FIRST_POSITION = 6
local LAST_POSITION = FIRST_POSITION + tonumber(ARGV[5]) - 1
-- A record's state byte: DONE, plus HAS_OUTPUT when its output is stored.
local DONE_STATE, DONE_WITH_OUTPUT = string.char(DONE), string.char(DONE + HAS_OUTPUT)

local members = {}
for i = FIRST_POSITION, LAST_POSITION do
  members[#members + 1] = ARGV[i] .. ':' .. token
end
local scores = redis.call('ZMSCORE', leases_key, unpack(members))
local held, positions, given, stale = {}, {}, {}, {}
for i, score in ipairs(scores) do
  local p = ARGV[i + FIRST_POSITION - 1]
  if score then
    held[#held + 1] = members[i]
    positions[#positions + 1] = p
    given[#given + 1] = i  -- its place among the positions given: where its 6 bytes are
  else
    stale[#stale + 1] = p
  end
end

if #held > 0 then
  -- A held position cannot be done already: only its holder can complete it.
  redis.call('ZREM', leases_key, unpack(held))
  local number = worker_number(meta_key, workers_key, worker)
  local now = now_ms()
  local tail = struct.pack(RECORD_TAIL_FORMAT, number, now)
  local charged = nil
  if not known then
    charged = redis.call('HMGET', attempts_key, unpack(positions))
  end
  local output_of = {}
  for j = LAST_POSITION + 1, #ARGV, 2 do
    output_of[ARGV[j]] = ARGV[j + 1]
  end

  -- New records by ledger field, then each field touched is rewritten whole, once.
  local records, fields, outputs = {}, {}, {}
  local per_ms = {}  -- duration in ms -> items of this call that took it (a few values)
  for j, p in ipairs(positions) do
    local state = DONE_STATE
    local output = output_of[p]
    if output then
      state = DONE_WITH_OUTPUT
      outputs[#outputs + 1] = p
      outputs[#outputs + 1] = output
    end
    local i = given[j]
    local sent = string.sub(per_item, ATTEMPT_WIDTH * (i - 1) + 1, ATTEMPT_WIDTH * i)
    local _, ms = struct.unpack(ATTEMPT_FORMAT, sent)
    if charged then
      sent = struct.pack(ATTEMPT_FORMAT, (tonumber(charged[j]) or 0) + 1, ms)
    end
    per_ms[ms] = (per_ms[ms] or 0) + 1
    local n = tonumber(p)
    local f = math.floor(n / RECORDS_PER_FIELD)
    local slots = records[f]
    if not slots then
      slots = {}
      records[f] = slots
      fields[#fields + 1] = f
    end
    slots[n % RECORDS_PER_FIELD + 1] = state .. sent .. tail
  end
  local blobs = redis.call('HMGET', ledger_key, unpack(fields))
  local writes = {}
  for k, f in ipairs(fields) do
    local slots, blob, parts = records[f], blobs[k], {}
    for s = 1, RECORDS_PER_FIELD do
      parts[s] = slots[s]
        or (blob and string.sub(blob, (s - 1) * RECORD_WIDTH + 1, s * RECORD_WIDTH)) or NO_RECORD
    end
    writes[#writes + 1] = f
    writes[#writes + 1] = table.concat(parts)
  end
  redis.call('HSET', ledger_key, unpack(writes))
  if #outputs > 0 then
    redis.call('HSET', outputs_key, unpack(outputs))
  end
  redis.call('HINCRBY', meta_key, DONE_COUNT, #held)
  -- Bucketed once per distinct duration, not per item.
  local observed, sum_ms = {}, 0  -- bucket -> items of this call in it
  per_ms[UNKNOWN_MS] = nil
  for ms, n in pairs(per_ms) do
    local b = duration_bucket(ms)
    observed[b] = (observed[b] or 0) + n
    sum_ms = sum_ms + ms * n
  end
  for b, n in pairs(observed) do
    redis.call('HINCRBY', durations_key, b, n)
  end
  if sum_ms > 0 then
    redis.call('HINCRBY', durations_key, DURATION_SUM_MS, sum_ms)
  end
  if #held == 1 then
    -- Only a lease of one item is solo; a batch's completions skip this write.
    redis.call('HDEL', solo_key, positions[1])
  end
end
if #stale > 0 then
  redis.call('HINCRBY', meta_key, STALE, #stale)
end
return stale
