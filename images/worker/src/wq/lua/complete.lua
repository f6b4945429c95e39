-- complete.lua: record items as done, for positions this lease token still holds.
-- A position whose lease expired (reaped, maybe leased to another worker) is skipped, so a
-- late result never overwrites or doubles the current holder's.
--
-- KEYS[1] meta    hash: counter 'stale'
-- KEYS[2] leases  zset: "position:token" -> deadline
-- KEYS[3] done    hash: position -> worker id
-- ARGV[1] token   the worker's lease token
-- ARGV[2] worker  worker id recorded in done
-- ARGV[3..] positions
--
-- Returns the positions that were NOT recorded because the token no longer holds them.

local members = {}
for i = 3, #ARGV do
  members[#members + 1] = ARGV[i] .. ':' .. ARGV[1]
end
local scores = redis.call('ZMSCORE', KEYS[2], unpack(members))
local held, done, stale = {}, {}, {}
for i, score in ipairs(scores) do
  local p = ARGV[i + 2]
  if score then
    held[#held + 1] = members[i]
    done[#done + 1] = p
    done[#done + 1] = ARGV[2]
  else
    stale[#stale + 1] = p
  end
end
if #held > 0 then
  -- A held position cannot be done already: only its holder can complete it.
  redis.call('ZREM', KEYS[2], unpack(held))
  redis.call('HSET', KEYS[3], unpack(done))
end
if #stale > 0 then
  redis.call('HINCRBY', KEYS[1], 'stale', #stale)
end
return stale
