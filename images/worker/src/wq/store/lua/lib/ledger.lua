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

-- What a call recording items done gives after its own fields (complete.lua's ARGV, and
-- lease.lua's after its first three): `count` runs of consecutive positions (first, count)
-- from args[first], then position, output pairs to the end. Returns the runs (numbers) and
-- the outputs (position text -> JSON text).
local function completions_of(args, first, count)
  local runs, output_of = {}, {}
  local last = first + 2 * count - 1
  for i = first, last do
    runs[#runs + 1] = tonumber(args[i])
  end
  for j = last + 1, #args, 2 do
    output_of[args[j]] = args[j + 1]
  end
  return runs, output_of
end

-- The pattern of one item's ATTEMPT_FORMAT bytes, and a replacement for string.gsub that
-- wraps them into a whole record: state byte before, `tail` after (escaped: a '%' in the
-- replacement is gsub's).
local ATTEMPT_PATTERN = '(' .. string.rep('.', ATTEMPT_WIDTH) .. ')'
local function record_replacement(state, tail)
  return (string.gsub(state, '%%', '%%%%')) .. '%1' .. (string.gsub(tail, '%%', '%%%%'))
end

-- Record items done for the positions the token `token` still holds (lib/batches.lua): each
-- one's ledger record and its output, in the same step; the others (their lease expired, or
-- they are done or settled already) are refused, output and all, so a late result never
-- overwrites or doubles the current holder's. Records are laid out as wq/layout.py describes
-- (RECORD_FORMAT): the state byte, the ATTEMPT_FORMAT bytes the worker sent for the item, and
-- a tail of worker number and time shared by the call.
-- The positions come as runs of consecutive ones (`runs`: first, count, first, count, ...;
-- numbers, in ascending order), and `per_item` holds their ATTEMPT_FORMAT bytes in that order.
-- Where a whole run of a ledger field is held, its records are made by one string.gsub, not
-- one by one: a batch of consecutive items costs a few Lua steps per field of 32.
-- `histogram` ("bucket:count,...") and `sum_ms` are these attempts' share of the durations
-- histogram, counted by the worker; when some are refused, it is counted here from per_item.
-- The meta's last_finished_ms says when. `k`: the keys meta, leases, batches, ledger, outputs,
-- attempts, workers and durations;
-- `known`: the attempt numbers sent are right (else they are counted here); `output_of`:
-- position text -> output (JSON text). Returns the refused positions, as numbers.
local function record_done(k, token, worker, known, per_item, histogram, sum_ms, runs, output_of)
  local b = batch_of(k.batches, token)
  -- Each field's segments: {first slot, last slot, index in per_item of the first}.
  local fields, segments, index = {}, {}, 0  -- index: of the next position in per_item
  for r = 1, #runs, 2 do
    local p, last = runs[r], runs[r] + runs[r + 1] - 1
    while p <= last do
      local f = math.floor(p / RECORDS_PER_FIELD)
      local lo = p % RECORDS_PER_FIELD
      local hi = math.min(RECORDS_PER_FIELD - 1, lo + last - p)
      if not segments[f] then
        segments[f] = {}
        fields[#fields + 1] = f
      end
      local list = segments[f]
      list[#list + 1] = {lo, hi, index}
      index = index + hi - lo + 1
      p = p + hi - lo + 1
    end
  end
  local blobs = {}
  if b and #fields > 0 then
    blobs = redis.call('HMGET', k.ledger, unpack(fields))
  end
  local number = b and worker_number(k.meta, k.workers, worker)
  local now = now_ms()
  local tail = b and struct.pack(RECORD_TAIL_FORMAT, number, now)
  local replacement = b and record_replacement(string.char(DONE), tail)
  local done_state = string.char(DONE)
  local stale, spans = {}, {}  -- refused positions; per_item index ranges of held ones
  local writes, done = {}, 0
  for j, f in ipairs(fields) do
    local blob = blobs[j]
    local base = f * RECORDS_PER_FIELD
    local parts, at = {}, 0  -- the new field, in pieces; slots up to `at` placed
    for _, seg in ipairs(segments[f]) do
      local lo, hi, first = seg[1], seg[2], seg[3]
      -- A position given twice is refused the second time (lo < at).
      local whole = b and known and not b.settled_set and lo >= at and base + lo >= b.first
        and base + hi < b.first + b.count
        and (not blob or not string.find(
          string.sub(blob, lo * RECORD_WIDTH + 1, (hi + 1) * RECORD_WIDTH), '[^%z]'))
      if whole then
        parts[#parts + 1] = blob and string.sub(blob, at * RECORD_WIDTH + 1, lo * RECORD_WIDTH)
          or string.rep('\0', (lo - at) * RECORD_WIDTH)
        parts[#parts + 1] = string.gsub(
          string.sub(per_item, first * ATTEMPT_WIDTH + 1, (first + hi - lo + 1) * ATTEMPT_WIDTH),
          ATTEMPT_PATTERN, replacement)
        spans[#spans + 1] = {first, first + hi - lo}
        at = hi + 1
        done = done + hi - lo + 1
      else  -- one by one: is each held?
        for s = lo, hi do
          local n = base + s
          local i = first + s - lo
          local old = blob and string.sub(blob, s * RECORD_WIDTH + 1, (s + 1) * RECORD_WIDTH)
          if b and s >= at and batch_has(b, n) and (not old or string.byte(old, 1) == 0) then
            parts[#parts + 1] = blob and string.sub(blob, at * RECORD_WIDTH + 1, s * RECORD_WIDTH)
              or string.rep('\0', (s - at) * RECORD_WIDTH)
            local sent = string.sub(per_item, i * ATTEMPT_WIDTH + 1, (i + 1) * ATTEMPT_WIDTH)
            if not known then
              local charged = tonumber(redis.call('HGET', k.attempts, n)) or 0
              local _, ms = struct.unpack(ATTEMPT_FORMAT, sent)
              sent = struct.pack(ATTEMPT_FORMAT, charged + 1, ms)
            end
            parts[#parts + 1] = done_state .. sent .. tail
            spans[#spans + 1] = {i, i}
            at = s + 1
            done = done + 1
          else
            stale[#stale + 1] = n
          end
        end
      end
    end
    if at > 0 then
      parts[#parts + 1] = blob and string.sub(blob, at * RECORD_WIDTH + 1)
        or string.rep('\0', (RECORDS_PER_FIELD - at) * RECORD_WIDTH)
      writes[#writes + 1] = f
      writes[#writes + 1] = table.concat(parts)
    end
  end
  if #stale > 0 then
    redis.call('HINCRBY', k.meta, STALE, #stale)
  end
  if done == 0 then
    return stale
  end

  -- Outputs, of held positions only; their records say so (HAS_OUTPUT).
  local refused = {}
  for _, n in ipairs(stale) do
    refused[n] = true
  end
  local outputs, marked = {}, {}
  for p, output in pairs(output_of) do
    local n = tonumber(p)
    if not refused[n] then
      outputs[#outputs + 1] = p
      outputs[#outputs + 1] = output
      marked[math.floor(n / RECORDS_PER_FIELD)] = true
    end
  end
  local with_output = string.char(DONE + HAS_OUTPUT)
  for w = 1, #writes, 2 do
    local f = writes[w]
    if marked[f] then
      local blob, pieces, at = writes[w + 1], {}, 1
      for s = 0, RECORDS_PER_FIELD - 1 do
        local p = tostring(f * RECORDS_PER_FIELD + s)
        if output_of[p] and not refused[tonumber(p)] then
          local byte = s * RECORD_WIDTH + 1
          pieces[#pieces + 1] = string.sub(blob, at, byte - 1)
          pieces[#pieces + 1] = with_output
          at = byte + 1
        end
      end
      pieces[#pieces + 1] = string.sub(blob, at)
      writes[w + 1] = table.concat(pieces)
    end
  end
  redis.call('HSET', k.ledger, unpack(writes))
  if #outputs > 0 then
    redis.call('HSET', k.outputs, unpack(outputs))
  end
  redis.call('HINCRBY', k.meta, DONE_COUNT, done)
  redis.call('HSET', k.meta, LAST_FINISHED_MS, now)
  batch_settle(k.meta, k.leases, k.batches, token, b, done, nil)

  -- The durations histogram: the worker's count, unless some were refused.
  local observed = {}  -- bucket -> attempts
  if #stale == 0 then
    for bucket, count in string.gmatch(histogram, '(%d+):(%d+)') do
      observed[bucket] = tonumber(count)
    end
  else
    sum_ms = 0
    for _, span in ipairs(spans) do
      for i = span[1], span[2] do
        local _, ms = struct.unpack(ATTEMPT_FORMAT, per_item, i * ATTEMPT_WIDTH + 1)
        if ms ~= UNKNOWN_MS then
          local bucket = duration_bucket(ms)
          observed[bucket] = (observed[bucket] or 0) + 1
          sum_ms = sum_ms + ms
        end
      end
    end
  end
  for bucket, count in pairs(observed) do
    redis.call('HINCRBY', k.durations, bucket, count)
  end
  if tonumber(sum_ms) > 0 then
    redis.call('HINCRBY', k.durations, DURATION_SUM_MS, sum_ms)
  end
  return stale
end
