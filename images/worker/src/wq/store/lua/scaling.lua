-- scaling.lua: record the autoscaler's last decision on a run's worker Job, for `wq status`.
-- Only while the run is seeded, so that a lost or purged run never gets a stray key back; and
-- with the meta hash's expiry, so that a drained run's record goes with its keys. Layout:
-- wq/layout.py (scaling hash).
--
-- KEYS[1] meta      hash: seeded
-- KEYS[2] scaling   hash: job, current, target, reason, at_ms
-- ARGV[1] job       name of the worker Job
-- ARGV[2] current   its parallelism when the decision was made
-- ARGV[3] target    the parallelism decided
-- ARGV[4] reason    why, in words
--
-- Returns 1 if the decision was recorded, 0 if the run is not seeded.

local meta_key, scaling_key = KEYS[1], KEYS[2]
local job, current, target, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('HEXISTS', meta_key, SEEDED) == 0 then
  return 0
end
local now = now_ms()
redis.call('HSET', scaling_key, 'job', job, 'current', current, 'target', target,
  'reason', reason, 'at_ms', now)
local ttl = redis.call('PTTL', meta_key)
if ttl > 0 then
  redis.call('PEXPIRE', scaling_key, ttl)
else
  redis.call('PERSIST', scaling_key)
end
return 1
