-- adopt.lua: turn a plain Redis list filled by hand (`rpush job2 apple banana`, as in the
-- Kubernetes docs) into a seeded run, atomically: items keep the list's order, each value
-- becomes a JSON string, and the list is removed. A no-op once the run is seeded.
--
-- KEYS[1] meta    hash: total, cursor, kind, seeded
-- KEYS[2] items   hash: position -> item JSON
-- KEYS[3] source  the plain list
--
-- Returns the number of items adopted, or -1 if the run was already seeded.

if redis.call('HEXISTS', KEYS[1], 'seeded') == 1 then
  return -1
end
local values = redis.call('LRANGE', KEYS[3], 0, -1)
local chunk = {}
for i, v in ipairs(values) do
  chunk[#chunk + 1] = tostring(i - 1)
  chunk[#chunk + 1] = cjson.encode(v)
  if #chunk >= 1000 then
    redis.call('HSET', KEYS[2], unpack(chunk))
    chunk = {}
  end
end
if #chunk > 0 then
  redis.call('HSET', KEYS[2], unpack(chunk))
end
redis.call('DEL', KEYS[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'total', #values, 'cursor', 0, 'kind', 'list',
  'range_start', 0, 'range_step', 1, 'seeded', now)
return #values
