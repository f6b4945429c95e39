-- seed.lua: commit a run, once. The seeder has staged list items into a staging hash; this
-- renames it into place and sets the seeded marker in one step, so workers never see a
-- half-seeded run and a retried seeder never seeds twice. Layout: wq/layout.py.
-- An adoption (`wq seed --adopt-list`) has copied a plain list into the staging hash; its
-- commit also unlinks the list, unless the list changed length while it was copied.
-- An open run (`wq seed --open`, or the first `--append`) is marked open: it takes appends
-- (append.lua) until sealed (seal.lua), and its digest waits for the seal.
--
-- KEYS[1] meta     hash: total, cursor, kind, range_start, range_step, chunk, digest, format,
--                  seeded, open, open_digest
-- KEYS[2] items    hash: field -> `chunk` items as JSON joined by newlines
-- KEYS[3] staging  hash filled by this seeder (may be absent for an empty or range run)
-- KEYS[4] source   (optional: adoptions only) the plain list the staging hash was copied
--                  from
-- ARGV[1] total        items in the run
-- ARGV[2] kind         'list' or 'range'
-- ARGV[3] range_start  (a range run's; '' or anything for a list run)
-- ARGV[4] range_step
-- ARGV[5] chunk        items per field of the items hash
-- ARGV[6] digest       digest of the items
-- ARGV[7] format       storage format of the run's keys (layout.STORAGE_FORMAT, OPEN_FORMAT)
-- ARGV[8] open         '1': seed the run open (the digest is then stored as open_digest),
--                      '0': sealed
-- ARGV[9] copied       (optional: adoptions only) how many items were copied from the list
--
-- Returns 1 if this call seeded the run, 0 if the run was already seeded, -1 if the list
-- being adopted changed length (nothing is committed; the staging hash is dropped).

local meta_key, items_key, staging_key, source_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local total, kind, range_start, range_step, chunk = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local digest, format, open, copied = ARGV[6], ARGV[7], ARGV[8] == '1', tonumber(ARGV[9])

if redis.call('HEXISTS', meta_key, SEEDED) == 1 then
  redis.call('UNLINK', staging_key)
  return 0
end
if source_key and redis.call('LLEN', source_key) ~= copied then
  redis.call('UNLINK', staging_key)
  return -1
end
if redis.call('EXISTS', staging_key) == 1 then
  redis.call('RENAME', staging_key, items_key)
  redis.call('PERSIST', items_key)
end
if source_key then
  redis.call('UNLINK', source_key)
end
local now = now_ms()
redis.call('HSET', meta_key, TOTAL, total, CURSOR, 0, KIND, kind,
  RANGE_START, range_start, RANGE_STEP, range_step, CHUNK, chunk,
  FORMAT, format, SEEDED, now)
if open then
  redis.call('HSET', meta_key, OPEN, 1, OPEN_DIGEST, digest)
else
  redis.call('HSET', meta_key, DIGEST, digest)
end
return 1
