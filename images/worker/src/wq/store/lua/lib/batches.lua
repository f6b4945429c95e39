-- lib/batches.lua: leases by batch (wq/store/layout.py: the leases sorted set and the batches
-- hash). Not a script: wq.store.scripts puts the definitions a script names in its prelude.

-- A batch record's parts: left, first, count, returned, settled.
local BATCH_PATTERN = '^(%d+)' .. BATCH_SEPARATOR .. '(%d+)' .. BATCH_SEPARATOR .. '(%d+)'
  .. BATCH_SEPARATOR .. '([%d' .. LIST_SEPARATOR .. ']*)' .. BATCH_SEPARATOR
  .. '([%d' .. LIST_SEPARATOR .. ']*)$'

-- A record's text from its parts (numbers, and the lists as text).
local function batch_text(left, first, count, returned, settled)
  return table.concat({left, first, count, returned, settled}, BATCH_SEPARATOR)
end

-- The positions of a list's text, as a set of numbers; nil for an empty list, so that the
-- usual batch (no position returned, none settled) costs no table.
local function position_set(text)
  if text == '' then
    return nil
  end
  local set = {}
  for p in string.gmatch(text, '%d+') do
    set[tonumber(p)] = true
  end
  return set
end

-- The batch a lease token holds, or nil: its lease expired and was reaped, or every position
-- of it is done, failed or released.
local function batch_of(batches_key, token)
  local text = redis.call('HGET', batches_key, token)
  if not text then
    return nil
  end
  local left, first, count, returned, settled = string.match(text, BATCH_PATTERN)
  return {
    left = tonumber(left), first = tonumber(first), count = tonumber(count),
    returned = returned, settled = settled,
    returned_set = position_set(returned), settled_set = position_set(settled),
  }
end

-- Whether batch b has position n (a number) and has not settled it.
local function batch_has(b, n)
  if b.settled_set and b.settled_set[n] then
    return false
  end
  if n >= b.first and n < b.first + b.count then
    return true
  end
  return b.returned_set ~= nil and b.returned_set[n] == true
end

-- How many positions batch b was leased with.
local function batch_size(b)
  if b.returned == '' then
    return b.count
  end
  local _, commas = string.gsub(b.returned, LIST_SEPARATOR, '')
  return b.count + commas + 1
end

-- The positions of batch b not settled, as numbers, returned ones first (the lease's order).
local function batch_positions(b)
  local out = {}
  for p in string.gmatch(b.returned, '%d+') do
    local n = tonumber(p)
    if batch_has(b, n) then
      out[#out + 1] = n
    end
  end
  for n = b.first, b.first + b.count - 1 do
    if batch_has(b, n) then
      out[#out + 1] = n
    end
  end
  return out
end

-- Which of `numbers` (positions, as numbers) batch b still holds: in it, not settled, and
-- without a ledger record (done or dead). Returns their indexes in `numbers`, in order, and
-- the ledger fields read (field number -> its blob, false if absent).
local function batch_holds(ledger_key, b, numbers)
  local candidates, fields, blob_of = {}, {}, {}
  for i, n in ipairs(numbers) do
    if batch_has(b, n) then
      candidates[#candidates + 1] = i
      local f = math.floor(n / RECORDS_PER_FIELD)
      if blob_of[f] == nil then
        blob_of[f] = false
        fields[#fields + 1] = f
      end
    end
  end
  if #fields == 0 then
    return {}, blob_of
  end
  local blobs = redis.call('HMGET', ledger_key, unpack(fields))
  for k, f in ipairs(fields) do
    blob_of[f] = blobs[k]
  end
  local held = {}
  for _, i in ipairs(candidates) do
    local n = numbers[i]
    local blob = blob_of[math.floor(n / RECORDS_PER_FIELD)]
    if not blob or string.byte(blob, (n % RECORDS_PER_FIELD) * RECORD_WIDTH + 1) == 0 then
      held[#held + 1] = i
    end
  end
  return held, blob_of
end

-- Batch b under `token` lost `gone` of its positions (done, failed, released); `settled`
-- lists those that left it one at a time (failed, released: position text), or is nil. A
-- batch with none left goes, with its lease. The meta's in_flight follows.
local function batch_settle(meta_key, leases_key, batches_key, token, b, gone, settled)
  if gone == 0 then
    return
  end
  redis.call('HINCRBY', meta_key, IN_FLIGHT, -gone)
  b.left = b.left - gone
  if b.left <= 0 then
    redis.call('HDEL', batches_key, token)
    redis.call('ZREM', leases_key, token)
    return
  end
  if settled and #settled > 0 then
    local more = table.concat(settled, LIST_SEPARATOR)
    b.settled = b.settled == '' and more or (b.settled .. LIST_SEPARATOR .. more)
  end
  redis.call('HSET', batches_key, token, batch_text(b.left, b.first, b.count, b.returned, b.settled))
end
