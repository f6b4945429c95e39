-- append.lua: add a chunk of items to an open run, all at once. The chunk's fields of the
-- items hash are written, the run's last field completed if it was partly filled, and only
-- then `total` raised: workers lease positions below `total` only, so they see the whole
-- chunk or none of it. The appender laid the chunk out for the total it read; if another
-- appender got there first, nothing is written and it lays the chunk out again.
-- Layouts: wq/layout.py.
--
-- KEYS[1] meta   hash: seeded, total, open, chunk
-- KEYS[2] items  hash: field -> `chunk` items as JSON joined by newlines
-- ARGV[1] total  the run's total the chunk was laid out for: its first item's position
-- ARGV[2] count  items in the chunk
-- ARGV[3..]      field, joined items pairs in field order; when `total` is not a multiple of
--                `chunk`, the first field holds only the items that complete field
--                total // chunk, which are joined to the items it holds
--
-- Returns the run's new total, or -1 if the total is not ARGV[1] any more (lay out again),
-- -2 if the run is sealed (it takes no more items), -3 if it is not seeded.

local meta_key, items_key = KEYS[1], KEYS[2]
local expected, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local FIRST_FIELD = 3

local meta = redis.call('HMGET', meta_key, 'seeded', 'total', 'open', 'chunk')
if not meta[1] then
  return -3
end
if not meta[3] then
  return -2
end
local total, chunk = tonumber(meta[2]), tonumber(meta[4])
if total ~= expected then
  return -1
end
local writes = {}
for i = FIRST_FIELD, #ARGV, 2 do
  local field, joined = ARGV[i], ARGV[i + 1]
  if i == FIRST_FIELD and total % chunk ~= 0 then
    joined = redis.call('HGET', items_key, field) .. '\n' .. joined
  end
  writes[#writes + 1] = field
  writes[#writes + 1] = joined
end
if #writes > 0 then
  redis.call('HSET', items_key, unpack(writes))
end
redis.call('HSET', meta_key, 'total', total + count)
return total + count
