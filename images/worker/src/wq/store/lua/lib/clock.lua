-- lib/clock.lua: Redis time, as the scripts record it. Not a script: wq.store.scripts puts the
-- definitions a script names in its prelude.

-- Redis time in milliseconds since the epoch: what the scripts record and compare deadlines
-- with (one clock for every worker, whatever their own clocks say).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
