-- adopt.lua: turn a plain Redis list filled by hand (`rpush job2 apple banana`, as in the
-- Kubernetes docs) into a seeded run, atomically: items keep the list's order, each value
-- becomes a JSON string, and the list is removed. A no-op once the run is seeded.
-- The meta fields and the items layout are described in wq/layout.py.
--
-- KEYS[1] meta    hash: total, cursor, kind, chunk, seeded
-- KEYS[2] items   hash: field -> `chunk` items as JSON joined by newlines
-- KEYS[3] source  the plain list
-- ARGV[1] chunk   items per field of the items hash
--
-- Returns the number of items adopted, or -1 if the run was already seeded.

local meta_key, items_key, source_key = KEYS[1], KEYS[2], KEYS[3]
local chunk = tonumber(ARGV[1])

if redis.call('HEXISTS', meta_key, 'seeded') == 1 then
  return -1
end
local values = redis.call('LRANGE', source_key, 0, -1)
local encoded = {}
for i, v in ipairs(values) do
  encoded[#encoded + 1] = cjson.encode(v)
  if #encoded == chunk or i == #values then
    redis.call('HSET', items_key, math.floor((i - 1) / chunk), table.concat(encoded, '\n'))
    encoded = {}
  end
end
redis.call('DEL', source_key)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', meta_key, 'total', #values, 'cursor', 0, 'kind', 'list',
  'range_start', 0, 'range_step', 1, 'chunk', chunk, 'seeded', now)
return #values
