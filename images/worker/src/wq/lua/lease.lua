-- lease.lua: lease up to COUNT items to one worker, in seed order; items that came back
-- (expired, failed, released) are taken first. Does not reap: the reply carries the earliest
-- lease deadline so the caller knows when reap.lua has work.
--
-- The meta fields, the items layout and the range formula are described in wq/layout.py.
--
-- KEYS[1] meta      hash: total, cursor, seeded, kind, range_start, range_step, chunk, counters
-- KEYS[2] items     hash: field -> up to `chunk` items as JSON, joined by newlines
--                   (list runs only; JSON text never holds a raw newline)
-- KEYS[3] requeue   list of positions that came back
-- KEYS[4] leases    zset: "position:token" -> deadline (ms)
-- KEYS[5] attempts  hash: position -> attempts so far, for items that came back
-- ARGV[1] count     how many items the worker wants (0 = only report the state)
-- ARGV[2] lease_ms  lease length in milliseconds
-- ARGV[3] token     token for this lease (fences late results)
--
-- Returns {seeded (0|1), now_ms, earliest_deadline_ms (-1 if none), pending, in_flight,
--          position_1, attempt_1, item_1, position_2, ...}

local meta_key, items_key, requeue_key, leases_key, attempts_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local want, lease_ms, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local meta = redis.call('HMGET', meta_key, 'seeded', 'total', 'cursor', 'kind', 'range_start',
  'range_step', 'chunk')
if not meta[1] then
  return {0, now, -1, 0, 0}
end
local total = tonumber(meta[2])
local cursor = tonumber(meta[3])
local positions, attempts = {}, {}

if want > 0 then
  local back = redis.call('LPOP', requeue_key, want)
  if back then
    for _, p in ipairs(back) do
      positions[#positions + 1] = tonumber(p)
      attempts[#attempts + 1] = redis.call('HINCRBY', attempts_key, p, 1)
    end
  end
  local fresh = math.min(want - #positions, total - cursor)
  if fresh > 0 then
    -- A first attempt writes nothing to the attempts hash: absent means 1.
    for i = 0, fresh - 1 do
      positions[#positions + 1] = cursor + i
      attempts[#attempts + 1] = 1
    end
    cursor = cursor + fresh
    redis.call('HSET', meta_key, 'cursor', cursor)
  end
end

local reply = {1, now, -1, 0, 0}
local n = #positions
if n > 0 then
  local deadline = now + lease_ms
  local zargs = {}
  for i, p in ipairs(positions) do
    zargs[2 * i - 1] = deadline
    zargs[2 * i] = p .. ':' .. token
  end
  redis.call('ZADD', leases_key, unpack(zargs))
  redis.call('HINCRBY', meta_key, 'executions', n)
  redis.call('HSETNX', meta_key, 'first_lease_ms', now)

  local payloads = {}
  if meta[4] == 'range' then
    local start, step = tonumber(meta[5]), tonumber(meta[6])
    for i, p in ipairs(positions) do
      payloads[i] = string.format('%d', start + p * step)
    end
  else
    local chunk = tonumber(meta[7])
    local split = {}  -- field -> its items, each chunk read and split once per call
    for i, p in ipairs(positions) do
      local c = math.floor(p / chunk)
      local parts = split[c]
      if not parts then
        parts = {}
        local blob = redis.call('HGET', items_key, c) or ''
        local start = 1
        while true do
          local nl = string.find(blob, '\n', start, true)
          if not nl then
            parts[#parts + 1] = string.sub(blob, start)
            break
          end
          parts[#parts + 1] = string.sub(blob, start, nl - 1)
          start = nl + 1
        end
        split[c] = parts
      end
      payloads[i] = parts[p % chunk + 1]
    end
  end
  for i, p in ipairs(positions) do
    reply[#reply + 1] = p
    reply[#reply + 1] = attempts[i]
    reply[#reply + 1] = payloads[i]
  end
end

local earliest = redis.call('ZRANGE', leases_key, 0, 0, 'WITHSCORES')
if earliest[2] then
  reply[3] = tonumber(earliest[2])
end
reply[4] = redis.call('LLEN', requeue_key) + (total - cursor)
reply[5] = redis.call('ZCARD', leases_key)
return reply
