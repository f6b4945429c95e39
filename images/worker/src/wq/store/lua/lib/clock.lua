-- lib/clock.lua: Redis time, as the scripts record it. Not a script: wq.store.scripts puts the
-- definitions a script names in its prelude.

-- Redis time in milliseconds since the epoch: what the scripts record and compare deadlines
-- with (one clock for every worker, whatever their own clocks say).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- When this Redis server started, in Redis time (ms): `now` less its uptime, which INFO gives
-- in whole seconds, so this is up to a second late. A restarted Redis replays its append-only
-- file, leases and all, but their holders could not renew them while it was down.
local function server_started_ms(now)
  local uptime = string.match(redis.call('INFO', 'server'), 'uptime_in_seconds:(%d+)')
  return now - tonumber(uptime) * 1000
end
