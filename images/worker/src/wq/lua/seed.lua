-- seed.lua: commit a run, once. The seeder has staged list items into a staging hash; this
-- renames it into place and sets the seeded marker in one step, so workers never see a
-- half-seeded run and a retried seeder never seeds twice.
--
-- KEYS[1] meta     hash: total, cursor, kind, range_start, range_step, chunk, seeded
-- KEYS[2] items    hash: chunk number -> items as JSON joined by newlines
-- KEYS[3] staging  hash filled by this seeder (may be absent for an empty or range run)
-- ARGV[1] total  ARGV[2] kind ('list' or 'range')  ARGV[3] range_start  ARGV[4] range_step
-- ARGV[5] chunk (items per field of the items hash)
--
-- Returns 1 if this call seeded the run, 0 if the run was already seeded.

if redis.call('HEXISTS', KEYS[1], 'seeded') == 1 then
  redis.call('DEL', KEYS[3])
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[2])
  redis.call('PERSIST', KEYS[2])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'cursor', 0, 'kind', ARGV[2],
  'range_start', ARGV[3], 'range_step', ARGV[4], 'chunk', ARGV[5], 'seeded', now)
return 1
