-- complete.lua: record items as done, for positions this lease token still holds: each one's
-- ledger record (attempts, duration, worker, time) and its output, in the same step. A
-- position whose lease expired (reaped, maybe leased to another worker) is skipped, output and
-- all, so a late result never overwrites or doubles the current holder's.
-- Records are packed as wq/layout.py describes (RECORD_FORMAT, 32 per field of 16 bytes).
--
-- KEYS[1] meta      hash: counters 'done', 'stale', 'workers' (fields in wq/layout.py)
-- KEYS[2] leases    zset: "position:token" -> deadline
-- KEYS[3] ledger    hash: field -> 32 packed records
-- KEYS[4] outputs   hash: position -> output as JSON text
-- KEYS[5] attempts  hash: position -> attempts charged so far (absent: 0)
-- KEYS[6] workers   hash: worker id -> its number in records
-- KEYS[7] solo      hash: position -> token of a lease holding that item alone
-- ARGV[1] token     the worker's lease token
-- ARGV[2] worker    worker id recorded (by its number) in each record
-- ARGV[3] durations milliseconds each attempt took, a 4-byte big-endian integer per position,
--                   in the order of the positions below (0xFFFFFFFF: not known)
-- ARGV[4] outputs   K: how many of the positions below come with an output (the first K)
-- ARGV[5..4+K] the outputs of the first K positions, as JSON text
-- ARGV[5+K..] positions
--
-- Returns the positions that were NOT recorded because the token no longer holds them.

local meta_key, leases_key, ledger_key, outputs_key, attempts_key, workers_key, solo_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local token, worker, durations, with_output = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local FIRST_OUTPUT = 5
local FIRST_POSITION = FIRST_OUTPUT + with_output
local PER_FIELD, WIDTH, FORMAT = 32, 16, '>BHI3I4I6'
local DONE, HAS_OUTPUT = 1, 128
local NO_RECORD = string.rep('\0', WIDTH)

local members = {}
for i = FIRST_POSITION, #ARGV do
  members[#members + 1] = ARGV[i] .. ':' .. token
end
local scores = redis.call('ZMSCORE', leases_key, unpack(members))
local held, positions, given, stale = {}, {}, {}, {}
for i, score in ipairs(scores) do
  local p = ARGV[i + FIRST_POSITION - 1]
  if score then
    held[#held + 1] = members[i]
    positions[#positions + 1] = p
    given[#given + 1] = i  -- its place among the positions given: its duration and output
  else
    stale[#stale + 1] = p
  end
end

if #held > 0 then
  -- A held position cannot be done already: only its holder can complete it.
  redis.call('ZREM', leases_key, unpack(held))
  local number = redis.call('HGET', workers_key, worker)
  if not number then
    number = redis.call('HINCRBY', meta_key, 'workers', 1)
    redis.call('HSET', workers_key, worker, number)
  end
  number = tonumber(number)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local charged = redis.call('HMGET', attempts_key, unpack(positions))

  -- New records by ledger field, then each field touched is rewritten whole, once.
  local records, fields, outputs = {}, {}, {}
  for j, p in ipairs(positions) do
    local i = given[j]
    local state = DONE
    if i <= with_output then
      state = DONE + HAS_OUTPUT
      outputs[#outputs + 1] = p
      outputs[#outputs + 1] = ARGV[FIRST_OUTPUT + i - 1]
    end
    local n = tonumber(p)
    local f = math.floor(n / PER_FIELD)
    local slots = records[f]
    if not slots then
      slots = {}
      records[f] = slots
      fields[#fields + 1] = f
    end
    local ms = struct.unpack('>I4', durations, 4 * i - 3)
    slots[n % PER_FIELD + 1] =
      struct.pack(FORMAT, state, (tonumber(charged[j]) or 0) + 1, number, ms, now)
  end
  local blobs = redis.call('HMGET', ledger_key, unpack(fields))
  local writes = {}
  for k, f in ipairs(fields) do
    local slots, blob, parts = records[f], blobs[k], {}
    for s = 1, PER_FIELD do
      parts[s] = slots[s] or (blob and string.sub(blob, s * WIDTH - WIDTH + 1, s * WIDTH))
        or NO_RECORD
    end
    writes[#writes + 1] = f
    writes[#writes + 1] = table.concat(parts)
  end
  redis.call('HSET', ledger_key, unpack(writes))
  if #outputs > 0 then
    redis.call('HSET', outputs_key, unpack(outputs))
  end
  redis.call('HINCRBY', meta_key, 'done', #held)
  if #held == 1 then
    -- Only a lease of one item is solo; a batch's completions skip this write.
    redis.call('HDEL', solo_key, positions[1])
  end
end
if #stale > 0 then
  redis.call('HINCRBY', meta_key, 'stale', #stale)
end
return stale
