-- lease.lua: lease up to WANT items to one worker, as one batch under TOKEN, in this order:
-- items that came back after a failure or a graceful release, else ONE item that came back
-- from an expired lease of several (it may have killed its worker, so it runs alone), else
-- fresh items in seed order. Recorded as the token's deadline in the leases sorted set and its
-- batch record (wq/layout.py), a few writes whatever the batch's size. A batch of exactly one
-- item is solo: if it expires, the item is charged an attempt (reap.lua). Does not reap: the
-- reply carries the earliest lease deadline so the caller knows when reap.lua has work.
-- Given the results of a batch the worker finished (ARGV[4..]), it records them first, as
-- complete.lua does (record_done, lua/lib/ledger.lua): one call per batch in the steady state.
-- The meta fields and the items layout are described in wq/layout.py.
--
-- KEYS[1] meta      hash: total, cursor, seeded, kind, range_start, range_step, chunk, open,
--                   seeder_ms, in_flight, counters
-- KEYS[2] items     hash: field -> up to `chunk` items as JSON, joined by newlines
--                   (list runs only; JSON text never holds a raw newline)
-- KEYS[3] requeue   list of positions that came back after a failure or a release
-- KEYS[4] suspects  list of positions that came back from an expired lease of several
-- KEYS[5] leases    zset: token -> deadline (ms)
-- KEYS[6] batches   hash: token -> its batch record
-- KEYS[7] attempts  hash: position -> attempts charged so far (absent: 0)
-- KEYS[8] ledger    hash: field -> RECORDS_PER_FIELD packed records
-- KEYS[9] outputs   hash: position -> output as JSON text
-- KEYS[10] workers  hash: worker id -> its number in records
-- KEYS[11] durations hash: bucket -> attempts, and sum_ms
-- ARGV[1] want      how many items the worker wants (0 = only report the state)
-- ARGV[2] lease_ms  lease length in milliseconds
-- ARGV[3] token     token for this lease (fences late results)
-- ARGV[4] done      (optional, with all that follows) the token of a batch whose results
--                   follow, as complete.lua takes them:
-- ARGV[5] worker    (optional) worker id, recorded by its number
-- ARGV[6] known     (optional) '1': the attempt numbers are known; '0': count them here
-- ARGV[7] per_item  (optional) ATTEMPT_FORMAT (wq/layout.py) per position, in the order of
--                   the runs: attempt number, milliseconds
-- ARGV[8] histogram (optional) their durations histogram: "bucket:count" pairs
-- ARGV[9] sum_ms    (optional) and the sum of their durations in ms
-- ARGV[10] R        (optional) how many runs of consecutive positions follow, ascending
-- ARGV[11..10+2R]   first position, count, of each run
-- ARGV[11+2R..]     position, output pairs: the outputs (JSON text) of positions that have one
--
-- Returns {seeded (0|1), now_ms, earliest_deadline_ms (-1 if none), pending, in_flight,
--          range_start, range_step, open (0|1: the run takes appends, so it is not finished
--          when drained), seeder_ms (when the progressive seeder of an open run last added
--          items, Redis time in ms; -1 if none), first, count (the fresh positions leased:
--          first .. first + count - 1), offset (list runs: position `first` is item
--          offset + 1 of the first field below), S (results refused), R (positions returned),
--          the S refused positions, then R triples position, attempt, item, then (list runs)
--          the fields of the items hash that hold the fresh positions (the caller splits them)}
-- range_start and range_step are '' for list runs. A range run's items are '': the caller
-- computes range_start + position * range_step, exactly (Lua numbers are doubles).

local meta_key, items_key, requeue_key, suspects_key, leases_key, batches_key, attempts_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local ledger_key, outputs_key, workers_key, durations_key = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local want, lease_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local done, worker, known, per_item = ARGV[4], ARGV[5], ARGV[6] == '1', ARGV[7]
local histogram, sum_ms, R = ARGV[8], ARGV[9], ARGV[10]
local FIRST_RUN = 11

-- A token that holds a batch already is a call retried after its reply was lost: the same
-- batch again, its results recorded by the first call.
local again = want > 0 and batch_of(batches_key, token)
local stale = {}
if done and not again then
  local keys = {
    meta = meta_key, leases = leases_key, batches = batches_key, ledger = ledger_key,
    outputs = outputs_key, attempts = attempts_key, workers = workers_key,
    durations = durations_key,
  }
  local runs, output_of = completions_of(ARGV, FIRST_RUN, tonumber(R))
  stale = record_done(keys, done, worker, known, per_item, histogram, sum_ms, runs, output_of)
end

local now = now_ms()
local meta = redis.call('HMGET', meta_key, SEEDED, TOTAL, CURSOR, KIND, RANGE_START,
  RANGE_STEP, CHUNK, OPEN, SEEDER_MS, IN_FLIGHT)
if not meta[1] then
  local reply = {0, now, -1, 0, 0, '', '', 0, -1, 0, 0, 0, #stale, 0}
  for _, p in ipairs(stale) do
    reply[#reply + 1] = p
  end
  return reply
end
local total = tonumber(meta[2])
local cursor = tonumber(meta[3])
local is_range = meta[4] == KIND_RANGE
local chunk = tonumber(meta[7])
local in_flight = tonumber(meta[10]) or 0
local back = {}  -- positions that came back, as text
local first, fresh = cursor, 0

if again then
  for p in string.gmatch(again.returned, '%d+') do
    back[#back + 1] = p
  end
  first, fresh = again.first, again.count
elseif want > 0 then
  back = redis.call('LPOP', requeue_key, want)
  if not back then
    back = {}
    local suspect = redis.call('LPOP', suspects_key)
    if suspect then
      back = {suspect}
      want = 1  -- alone: no fresh items beside it
    end
  end
  fresh = math.max(0, math.min(want - #back, total - cursor))
  if fresh > 0 then
    cursor = cursor + fresh
    redis.call('HSET', meta_key, CURSOR, cursor)
  end
end

local n = #back + fresh
local reply = {1, now, -1, 0, 0, '', '', meta[8] and 1 or 0, tonumber(meta[9]) or -1,
  first, fresh, 0, #stale, #back}
if is_range then
  reply[6], reply[7] = meta[5], meta[6]
else
  reply[12] = first % chunk
end
for _, p in ipairs(stale) do
  reply[#reply + 1] = p
end
if n > 0 and not again then
  redis.call('ZADD', leases_key, now + lease_ms, token)
  redis.call('HSET', batches_key, token,
    batch_text(n, first, fresh, table.concat(back, LIST_SEPARATOR), ''))
  in_flight = in_flight + n
  redis.call('HSET', meta_key, IN_FLIGHT, in_flight)
  redis.call('HINCRBY', meta_key, EXECUTIONS, n)
  redis.call('HSETNX', meta_key, FIRST_LEASE_MS, now)
end
if n > 0 then

  if #back > 0 then
    local charged = redis.call('HMGET', attempts_key, unpack(back))
    local split = {}  -- field -> its items, each field read and split once per call
    for i, p in ipairs(back) do
      local item = ''
      if not is_range then
        local number = tonumber(p)
        local c = math.floor(number / chunk)
        local parts = split[c]
        if not parts then
          parts = {}
          local blob = redis.call('HGET', items_key, c) or ''
          local start = 1
          while true do
            local nl = string.find(blob, SEPARATOR, start, true)
            if not nl then
              parts[#parts + 1] = string.sub(blob, start)
              break
            end
            parts[#parts + 1] = string.sub(blob, start, nl - 1)
            start = nl + #SEPARATOR
          end
          split[c] = parts
        end
        item = parts[number % chunk + 1]
      end
      reply[#reply + 1] = p
      reply[#reply + 1] = (tonumber(charged[i]) or 0) + 1
      reply[#reply + 1] = item
    end
  end
  if fresh > 0 and not is_range then
    local fields = {}
    for c = math.floor(first / chunk), math.floor((first + fresh - 1) / chunk) do
      fields[#fields + 1] = c
    end
    local blobs = redis.call('HMGET', items_key, unpack(fields))
    for _, blob in ipairs(blobs) do
      reply[#reply + 1] = blob or ''
    end
  end
end

local earliest = redis.call('ZRANGE', leases_key, 0, 0, 'WITHSCORES')
if earliest[2] then
  reply[3] = tonumber(earliest[2])
end
reply[4] = redis.call('LLEN', requeue_key) + redis.call('LLEN', suspects_key) + (total - cursor)
reply[5] = in_flight
return reply
