-- status.lua: a run's counts in one atomic read, on the run's own node (a pipeline with TIME
-- would need a keyless command, which a Redis Cluster cannot route with the run's keys).
-- The meta fields are described in wq/layout.py; 'done' among them counts the done items.
--
-- KEYS[1] meta      hash: total, cursor, seeded, counters, first_lease_ms, in_flight
-- KEYS[2] requeue   list of positions that came back after a failure or a release
-- KEYS[3] suspects  list of positions that came back from an expired lease of several
-- KEYS[4] dead      hash: position -> last error
-- KEYS[5] durations hash: bucket -> attempts, and sum_ms (wq/layout.py)
--
-- Returns {meta as a flat field/value list, requeued, suspects, in_flight, dead, now_ms,
--          ms until the run's keys expire (-1: never), durations as a flat field/value list}
-- `wq status` and the exporter both read a run with this one call; every read is O(1) (the
-- hashes read whole have a few dozen fields at most), whatever the run's size.

local meta_key, requeue_key, suspects_key, dead_key, durations_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

return {
  redis.call('HGETALL', meta_key),
  redis.call('LLEN', requeue_key),
  redis.call('LLEN', suspects_key),
  tonumber(redis.call('HGET', meta_key, IN_FLIGHT)) or 0,
  redis.call('HLEN', dead_key),
  now_ms(),
  redis.call('PTTL', meta_key),
  redis.call('HGETALL', durations_key),
}
