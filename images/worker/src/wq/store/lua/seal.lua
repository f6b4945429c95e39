-- seal.lua: close an open run to appends. Once sealed and drained, the run is finished:
-- workers exit 0. The caller then records the digest of all its items (they no longer
-- change). Sealing a sealed run changes nothing. Meta fields: wq/layout.py.
--
-- KEYS[1] meta  hash: seeded, total, open, sealed, digest
--
-- Returns {outcome, total, digest or '', was_open (0|1)}: outcome 1 if this call sealed the
-- run, 0 if it was sealed already (or never open), -1 if the run is not seeded.

local meta_key = KEYS[1]

local meta = redis.call('HMGET', meta_key, SEEDED, TOTAL, OPEN, DIGEST, SEALED)
if not meta[1] then
  return {-1, 0, '', 0}
end
if not meta[3] then
  return {0, tonumber(meta[2]), meta[4] or '', meta[5] and 1 or 0}
end
local now = now_ms()
redis.call('HDEL', meta_key, OPEN)
redis.call('HSET', meta_key, SEALED, now)
return {1, tonumber(meta[2]), '', 1}
