-- lease.lua: lease up to COUNT items to one worker, in this order: items that came back after
-- a failure or a graceful release (in batches), else ONE item that came back from an expired
-- lease of several (it may have killed its worker, so it runs alone), else fresh items in
-- seed order. A lease of exactly one item is recorded as solo: if it expires, the item is
-- charged an attempt (reap.lua). Does not reap: the reply carries the earliest lease deadline
-- so the caller knows when reap.lua has work.
-- The meta fields and the items layout are described in wq/layout.py.
--
-- KEYS[1] meta      hash: total, cursor, seeded, kind, range_start, range_step, chunk, open,
--                   seeder_ms, counters
-- KEYS[2] items     hash: field -> up to `chunk` items as JSON, joined by newlines
--                   (list runs only; JSON text never holds a raw newline)
-- KEYS[3] requeue   list of positions that came back after a failure or a release
-- KEYS[4] suspects  list of positions that came back from an expired lease of several
-- KEYS[5] leases    zset: "position:token" -> deadline (ms)
-- KEYS[6] attempts  hash: position -> attempts charged so far (absent: 0)
-- KEYS[7] solo      hash: position -> token of a lease holding that item alone
-- ARGV[1] want      how many items the worker wants (0 = only report the state)
-- ARGV[2] lease_ms  lease length in milliseconds
-- ARGV[3] token     token for this lease (fences late results)
--
-- Returns {seeded (0|1), now_ms, earliest_deadline_ms (-1 if none), pending, in_flight,
--          range_start, range_step, open (0|1: the run takes appends, so it is not finished
--          when drained), seeder_ms (when the progressive seeder of an open run last added
--          items, Redis time in ms; -1 if none), position_1, attempt_1, item_1, position_2, ...}
-- range_start and range_step are '' for list runs. A range run's items are '': the caller
-- computes range_start + position * range_step, exactly (Lua numbers are doubles).

local meta_key, items_key, requeue_key, suspects_key, leases_key, attempts_key, solo_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local want, lease_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]

local now = now_ms()
local meta = redis.call('HMGET', meta_key, SEEDED, TOTAL, CURSOR, KIND, RANGE_START,
  RANGE_STEP, CHUNK, OPEN, SEEDER_MS)
if not meta[1] then
  return {0, now, -1, 0, 0, '', '', 0, -1}
end
local total = tonumber(meta[2])
local cursor = tonumber(meta[3])
local is_range = meta[4] == KIND_RANGE
local positions = {}
local returned = 0  -- positions[1..returned] came back; the rest are fresh (attempt 1)

if want > 0 then
  local back = redis.call('LPOP', requeue_key, want)
  if not back then
    local suspect = redis.call('LPOP', suspects_key)
    if suspect then
      back = {suspect}
      want = 1  -- alone: no fresh items beside it
    end
  end
  if back then
    for i, p in ipairs(back) do
      positions[i] = tonumber(p)
    end
    returned = #back
  end
  local fresh = math.min(want - #positions, total - cursor)
  if fresh > 0 then
    for i = 0, fresh - 1 do
      positions[#positions + 1] = cursor + i
    end
    cursor = cursor + fresh
    redis.call('HSET', meta_key, CURSOR, cursor)
  end
end

local reply = {1, now, -1, 0, 0, '', '', meta[8] and 1 or 0, tonumber(meta[9]) or -1}
if is_range then
  reply[6], reply[7] = meta[5], meta[6]
end
local n = #positions
if n > 0 then
  local deadline = now + lease_ms
  local zargs = {}
  for i, p in ipairs(positions) do
    zargs[2 * i - 1] = deadline
    zargs[2 * i] = p .. ':' .. token
  end
  redis.call('ZADD', leases_key, unpack(zargs))
  if n == 1 then
    redis.call('HSET', solo_key, positions[1], token)
  end
  redis.call('HINCRBY', meta_key, EXECUTIONS, n)
  redis.call('HSETNX', meta_key, FIRST_LEASE_MS, now)

  local attempts = {}
  if returned > 0 then
    local charged = redis.call('HMGET', attempts_key, unpack(positions, 1, returned))
    for i = 1, returned do
      attempts[i] = (tonumber(charged[i]) or 0) + 1
    end
  end

  local payloads = {}
  if not is_range then
    local chunk = tonumber(meta[7])
    local split = {}  -- field -> its items, each field read and split once per call
    for i, p in ipairs(positions) do
      local c = math.floor(p / chunk)
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
      payloads[i] = parts[p % chunk + 1]
    end
  end
  for i, p in ipairs(positions) do
    reply[#reply + 1] = p
    reply[#reply + 1] = attempts[i] or 1
    reply[#reply + 1] = payloads[i] or ''
  end
end

local earliest = redis.call('ZRANGE', leases_key, 0, 0, 'WITHSCORES')
if earliest[2] then
  reply[3] = tonumber(earliest[2])
end
reply[4] = redis.call('LLEN', requeue_key) + redis.call('LLEN', suspects_key) + (total - cursor)
reply[5] = redis.call('ZCARD', leases_key)
return reply
