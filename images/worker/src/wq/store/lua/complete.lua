-- complete.lua: record items as done, for positions this lease token still holds: each one's
-- ledger record (attempts, duration, worker, time) and its output, in the same step
-- (record_done, lua/lib/ledger.lua). A position the token no longer holds (its lease expired
-- and was reaped, maybe leased to another worker; or it is done already) is refused, output
-- and all. lease.lua does the same for the batch a worker finished as it leases the next one;
-- this script records results alone (a flush of slow items, a stop, other callers).
--
-- KEYS[1] meta      hash: counters 'done', 'stale', 'workers', 'in_flight' (wq/layout.py)
-- KEYS[2] leases    zset: token -> deadline (ms)
-- KEYS[3] batches   hash: token -> its batch record (wq/layout.py)
-- KEYS[4] ledger    hash: field -> RECORDS_PER_FIELD packed records
-- KEYS[5] outputs   hash: position -> output as JSON text
-- KEYS[6] attempts  hash: position -> attempts charged so far (absent: 0)
-- KEYS[7] workers   hash: worker id -> its number in records
-- KEYS[8] durations hash: bucket -> attempts, and sum_ms (wq/layout.py)
-- ARGV[1] token     the worker's lease token
-- ARGV[2] worker    worker id, recorded by its number
-- ARGV[3] known     '1': the attempt numbers below are known; '0': count them here
-- ARGV[4] per_item  ATTEMPT_FORMAT (wq/layout.py) per position, in the order of the
--                   runs: attempt number and milliseconds the attempt took (UNKNOWN_MS: not
--                   known)
-- ARGV[5] histogram these attempts' durations histogram: "bucket:count" pairs, comma-separated
-- ARGV[6] sum_ms    and the sum of their durations in ms
-- ARGV[7] R         how many runs of consecutive positions follow, ascending
-- ARGV[8..7+2R]     first position, count, of each run
-- ARGV[8+2R..]      position, output pairs: the outputs (JSON text) of positions that have one
--
-- Returns the positions that were NOT recorded because the token no longer holds them.

local meta_key, leases_key, batches_key, ledger_key, outputs_key, attempts_key, workers_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local durations_key = KEYS[8]
local token, worker, known, per_item = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local histogram, sum_ms, R = ARGV[5], ARGV[6], ARGV[7]
local FIRST_RUN = 8

local keys = {
  meta = meta_key, leases = leases_key, batches = batches_key, ledger = ledger_key,
  outputs = outputs_key, attempts = attempts_key, workers = workers_key,
  durations = durations_key,
}
local runs, output_of = completions_of(ARGV, FIRST_RUN, tonumber(R))
return record_done(keys, token, worker, known, per_item, histogram, sum_ms, runs, output_of)
