-- complete.lua: record items as done, for positions this lease token still holds.
-- A position whose lease expired (reaped, maybe leased to another worker) is skipped, so a
-- late result never overwrites or doubles the current holder's.
--
-- KEYS[1] meta    hash: counter 'stale' (fields in wq/layout.py)
-- KEYS[2] leases  zset: "position:token" -> deadline
-- KEYS[3] done    hash: position -> worker id
-- KEYS[4] solo    hash: position -> token of a lease holding that item alone
-- ARGV[1] token   the worker's lease token
-- ARGV[2] worker  worker id recorded in done
-- ARGV[3..] positions
--
-- Returns the positions that were NOT recorded because the token no longer holds them.

local meta_key, leases_key, done_key, solo_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, worker = ARGV[1], ARGV[2]
local FIRST_POSITION = 3

local members = {}
for i = FIRST_POSITION, #ARGV do
  members[#members + 1] = ARGV[i] .. ':' .. token
end
local scores = redis.call('ZMSCORE', leases_key, unpack(members))
local held, done, stale = {}, {}, {}
for i, score in ipairs(scores) do
  local p = ARGV[i + FIRST_POSITION - 1]
  if score then
    held[#held + 1] = members[i]
    done[#done + 1] = p
    done[#done + 1] = worker
  else
    stale[#stale + 1] = p
  end
end
if #held > 0 then
  -- A held position cannot be done already: only its holder can complete it.
  redis.call('ZREM', leases_key, unpack(held))
  redis.call('HSET', done_key, unpack(done))
  if #held == 1 then
    -- Only a lease of one item is solo; a batch's completions skip this write.
    redis.call('HDEL', solo_key, done[1])
  end
end
if #stale > 0 then
  redis.call('HINCRBY', meta_key, 'stale', #stale)
end
return stale
