-- expire.lua: once a run is drained, give every key of it an expiry: its items, records,
-- outputs and counts go when the results have been kept long enough (`--results-ttl`).
-- Nothing changes while anything is pending or in flight, so a run being worked on never
-- loses its keys; `wq retry-dead` removes the expiry again (PERSIST) before it requeues.
-- The meta fields are described in wq/layout.py.
--
-- KEYS[1] meta      hash: total, cursor, seeded, open (an open run is never finished)
-- KEYS[2] requeue   list of positions that came back after a failure or a release
-- KEYS[3] suspects  list of positions that came back from an expired lease of several
-- KEYS[4] leases    zset: token -> deadline (ms), one per leased batch
-- KEYS[5..] every other key of the run
-- ARGV[1] ttl_ms    how long the keys live from now
--
-- Returns 1 if the keys were given the expiry, 0 if the run is not drained (or is open).

local meta_key, requeue_key, suspects_key, leases_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ttl_ms = ARGV[1]

local meta = redis.call('HMGET', meta_key, SEEDED, TOTAL, CURSOR, OPEN)
if not meta[1] or meta[4] or tonumber(meta[3]) < tonumber(meta[2]) then
  return 0
end
if redis.call('LLEN', requeue_key) > 0 or redis.call('LLEN', suspects_key) > 0
    or redis.call('ZCARD', leases_key) > 0 then
  return 0
end
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, ttl_ms)
end
return 1
