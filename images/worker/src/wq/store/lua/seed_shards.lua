-- seed_shards.lua: commit a sharded run's directory, once, after its shards are seeded (each
-- with seed.lua under its own hash tag): workers wait for this seeded marker, so they never
-- see some shards of a run and not others, and a retried seeder never writes it twice. A wq
-- that knows no shards reads its format (SHARDED_FORMAT) and refuses the run. Layout:
-- wq/store/shard_layout.py.
--
-- KEYS[1] meta        hash: the run's directory
-- ARGV[1] total       items in the run, all shards together
-- ARGV[2] kind        'range' or 'list' (the kind of every shard)
-- ARGV[3] range_start the whole run's
-- ARGV[4] range_step
-- ARGV[5] digest      of the whole run's items, in position order
-- ARGV[6] shard_runs  the shards' run ids in position order, joined by LIST_SEPARATOR
-- ARGV[7] shards      how many
-- ARGV[8] shard_layout  BLOCKS or STRIPES: which positions each shard holds
-- ARGV[9] open        '1': the run takes appends until sealed (its digest, ARGV[5], is ''
--                     until then); '': sealed
--
-- Returns 1 if this call seeded the run, 0 if it was seeded already (nothing is changed).

local meta_key = KEYS[1]
local total, kind, range_start, range_step = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local digest, shard_runs, shards, shard_layout = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local open = ARGV[9]

if redis.call('HEXISTS', meta_key, SEEDED) == 1 then
  return 0
end
redis.call('HSET', meta_key,
  TOTAL, total, KIND, kind, RANGE_START, range_start, RANGE_STEP, range_step,
  SHARD_RUNS, shard_runs, SHARDS, shards, SHARD_LAYOUT, shard_layout, FORMAT, SHARDED_FORMAT,
  SEEDED, now_ms())
if open == '1' then
  redis.call('HSET', meta_key, OPEN, '1')
else
  redis.call('HSET', meta_key, DIGEST, digest)
end
return 1
