-- append.lua: add a chunk of items to an open run, all at once. The chunk's fields of the
-- items hash are written, the run's last field completed if it was partly filled, and only
-- then `total` raised: workers lease positions below `total` only, so they see the whole
-- chunk or none of it. The appender laid the chunk out for the total it read; if another
-- appender got there first, nothing is written and it lays the chunk out again.
-- A progressive seeder (`wq seed --progressive`) also records, in the same step, how many
-- items of its source are in and their digest, so that a retried seeder resumes after them
-- (exactly once), and when it last added items (seeder_ms: workers of a drained open run tell
-- a seeder that stopped from one still reading).
-- Layouts: wq/layout.py.
--
-- KEYS[1] meta   hash: seeded, total, open, chunk, progress, progress_digest, seeder_ms
-- KEYS[2] items  hash: field -> `chunk` items as JSON joined by newlines
-- ARGV[1] expected  the run's total the chunk was laid out for: its first item's position
-- ARGV[2] count  items in the chunk
-- ARGV[3] progress   '' for a plain append; else the items of the progressive seeder's
--                    source in before this chunk, as the seeder read it from meta
-- ARGV[4] progress_digest  (with ARGV[3]) digest of the source's items once this chunk is in
-- ARGV[5..]      field, joined items pairs in field order; when `total` is not a multiple of
--                `chunk`, the first field holds only the items that complete field
--                total // chunk, which are joined to the items it holds
--
-- Returns the run's new total, or -1 if the total is not ARGV[1] any more (lay out again),
-- -2 if the run is sealed (it takes no more items), -3 if it is not seeded, -4 if the
-- progress is not ARGV[3] any more (another seeder of the same source is adding it).

local meta_key, items_key = KEYS[1], KEYS[2]
local expected, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local progress, progress_digest = ARGV[3], ARGV[4]
local FIRST_FIELD = 5

local meta = redis.call('HMGET', meta_key, SEEDED, TOTAL, OPEN, CHUNK, PROGRESS)
if not meta[1] then
  return -3
end
if not meta[3] then
  return -2
end
if progress ~= '' and tonumber(meta[5] or '0') ~= tonumber(progress) then
  return -4
end
local total, chunk = tonumber(meta[2]), tonumber(meta[4])
if total ~= expected then
  return -1
end
local writes = {}
for i = FIRST_FIELD, #ARGV, 2 do
  local field, joined = ARGV[i], ARGV[i + 1]
  if i == FIRST_FIELD and total % chunk ~= 0 then
    joined = redis.call('HGET', items_key, field) .. SEPARATOR .. joined
  end
  writes[#writes + 1] = field
  writes[#writes + 1] = joined
end
if #writes > 0 then
  redis.call('HSET', items_key, unpack(writes))
end
redis.call('HSET', meta_key, TOTAL, total + count)
if progress ~= '' then
  local now = now_ms()
  redis.call('HSET', meta_key, PROGRESS, tonumber(progress) + count,
    PROGRESS_DIGEST, progress_digest, SEEDER_MS, now)
end
return total + count
