"""How a run's data is laid out inside its keys (key names are in wq.store.keys).

The Lua scripts in wq/store/lua follow this layout too; their headers point here. Change it in
both places or not at all. The constants below reach the scripts generated: each script is
loaded behind a prelude of `local NAME = value` lines for those it names (wq.store.scripts).

meta hash (keys.RunKeys.meta), fields:
  total, cursor          items in the run; next position never leased yet
  seeded                 Redis time (ms) of the seeding commit; absent: not seeded
  kind                   'list' (items stored) or 'range' (items computed)
  range_start, range_step  a range run's item at position p is range_start + p * range_step
  chunk                  items per field of the items hash: choose_chunk's at seeding, from the
                         first items' sizes; ITEMS_PER_FIELD for a run seeded empty or adopted
  digest                 what the run's items are, fixed at seeding (wq.store.digests);
                         absent in runs seeded before wq recorded it, and in an open run until
                         it is sealed (then of all its items, in position order)
  open                   "1" while the run takes appends (`wq seed --open`, `--append`); absent:
                         sealed, so a drained run is finished. Workers never finish an open run
  sealed                 Redis time (ms) of the seal of a run that was open
  open_digest            digest of the items an open run was seeded with (a retried `wq seed
                         --open` compares it)
  progress, progress_digest, seeder_ms   of an open run filled by a progressive seeder (`wq seed
                         --progressive`): how many items of its source are in, their digest, and
                         when it last added some (Redis time, ms); written with each chunk
                         (append.lua), so that a retried seeder resumes after them
  format                 STORAGE_FORMAT of the wq that seeded the run, OPEN_FORMAT for a run
                         seeded open; absent: format 1 (wq 0.1, a `done` hash instead of the
                         ledger), which this wq refuses
  retried, released, executions, stale, first_lease_ms   counters and the first lease time
  in_flight              items held by leases now (the batches' `left`, summed)
  last_finished_ms       Redis time (ms) an item was last done or dead-lettered: a drained
                         run's end, to which its time and mean rate are reckoned
  done                   items recorded done (which ones: the ledger)
  workers                worker ids numbered so far in the workers hash (id -> number)

items hash (keys.RunKeys.items): field p // chunk holds `chunk` items as JSON text joined by
"\\n" (JSON text never holds a raw newline); one field per item would make seeding a million
items several times slower. The last field may hold fewer; an append (append.lua) completes it
and adds fields after it, then raises `total`, in one step: positions at or past `total` are
never read, so a chunk is seen whole or not at all.

leases sorted set and batches hash (keys.RunKeys.leases, batches): a lease is of a batch under
one token: the sorted set holds the token with its deadline (a renewal is one write, whatever
the batch's size), the batches hash its record, LEFT:FIRST:COUNT:RETURNED:SETTLED (split on
BATCH_SEPARATOR, the lists on LIST_SEPARATOR):
  LEFT       positions the token still holds (at 0 the record goes, token and all)
  FIRST, COUNT  fresh positions FIRST .. FIRST + COUNT - 1, in seed order (COUNT 0: none)
  RETURNED   other positions, that came back (failed, released, expired), leased first
  SETTLED    positions that left the batch one at a time, failed or released
A position is held while it is in the batch, not settled, and without a ledger record (a done
one has one): a late, second or superseded result is refused position by position. A batch of
one position is solo: if its lease expires, that item is charged an attempt.

ledger hash (keys.RunKeys.ledger): what happened to each finished item, RECORDS_PER_FIELD
fixed-width records per field: field p // RECORDS_PER_FIELD holds the record of position p at
byte (p % RECORDS_PER_FIELD) * RECORD_WIDTH. A field is written whole (RECORDS_PER_FIELD *
RECORD_WIDTH bytes); an absent field or an all-zero record means "no record": the item is
pending or in flight. A hash field per item (the `done` hash wq had before) cost about 72 bytes
per item; 32 packed records per field cost about 21. A record is, big-endian (RECORD_FORMAT):
  state    1 byte   DONE or DEAD, plus HAS_OUTPUT when the outputs hash holds its output
  attempts 2 bytes  attempts counted, the accepted one included (failures, worker deaths)
  duration 4 bytes  of the accepted (or last) attempt in ms; UNKNOWN_MS if not known
  worker   3 bytes  number of the worker in the workers hash (0: none, e.g. its worker died)
  finished 6 bytes  Redis time (ms since the epoch) when the result was recorded
What differs per item comes first and what one call shares (worker, time) last, so that
complete.lua builds a record from the 6 bytes a worker packs per item (ATTEMPT_FORMAT) and
one tail per call. The scripts that write records (complete, fail, reap, retry_dead) pack
them with Lua's struct.pack(RECORD_FORMAT, ...).

outputs hash (keys.RunKeys.outputs): position -> the accepted attempt's output as JSON text,
written by the same call as its done record, under the same lease token.

workers hash (keys.RunKeys.workers): worker id -> its number in ledger records (from 1).

durations hash (keys.RunKeys.durations): how long attempts took, as a histogram with the
buckets of DURATION_BUCKETS_S (upper bounds in seconds, Prometheus' `le`, then +Inf), for the
exporter's wq_item_duration_seconds. Field i (from "0") counts the attempts of bucket i alone:
over bound i - 1 and at most bound i; field len(DURATION_BUCKETS_S) those over the last bound.
Counts per bucket, not cumulative, so that an attempt adds to one field; the reader sums them.
Field sum_ms: the attempts' total duration in ms. Written by the calls that record attempts,
complete.lua (each done item) and fail.lua (each failed attempt, retried or dead), one
HINCRBY per bucket a call touches; both get the bounds in ms (DURATION_BUCKETS_MS). An attempt
whose duration is not known (its worker died: reap.lua) or whose result came too late (stale) is
not counted.
Durations are whole milliseconds, as the worker sends them (rounded down).

scaling hash (keys.RunKeys.scaling): the last decision of `wq autoscale` on the run's worker
Job, rewritten at each of its steps (scaling.lua) and read by `wq status`; absent when nothing
autoscales the run. Written only while the run is seeded, and given the meta hash's expiry:
  job                    name of the worker Job
  current, target        its parallelism when the decision was made, and the one decided
  reason                 why, in words (wq.scale.policy)
  at_ms                  Redis time (ms since the epoch) of the decision

A sharded run (`wq seed --shards N`, format SHARDED_FORMAT) spreads its positions over
sub-runs of this layout: wq.store.shard_layout.
"""

import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple

# Items per field of the items hash for a run whose item sizes are not known when it is laid
# out (an open run seeded empty, an adopted list); a run seeded with its items gets
# choose_chunk's.
ITEMS_PER_FIELD = 32
SEPARATOR = "\n"
# Bounds of choose_chunk: a lease reads and splits whole fields, so a field stays small.
MAX_CHUNK = 256
MAX_FIELD_BYTES = 64 * 1024

# Fields of the meta hash.
TOTAL = "total"
CURSOR = "cursor"
SEEDED = "seeded"
KIND = "kind"
RANGE_START = "range_start"
RANGE_STEP = "range_step"
CHUNK = "chunk"
DIGEST = "digest"
OPEN = "open"
SEALED = "sealed"
OPEN_DIGEST = "open_digest"
FORMAT = "format"
RETRIED = "retried"
RELEASED = "released"
EXECUTIONS = "executions"
STALE = "stale"
FIRST_LEASE_MS = "first_lease_ms"
PROGRESS = "progress"
PROGRESS_DIGEST = "progress_digest"
SEEDER_MS = "seeder_ms"
IN_FLIGHT = "in_flight"
LAST_FINISHED_MS = "last_finished_ms"

DONE_COUNT = "done"  # items recorded done (the ledger holds which)
WORKERS = "workers"  # how many worker ids the workers hash has numbered

# Fields of the scaling hash.
SCALING_FIELDS = ("job", "current", "target", "reason", "at_ms")

# The layout described here. A run keeps the format it was seeded with; a wq that reads another
# one refuses the run (errors.RunFormatError) rather than miscount it.
# Format 2 was this layout with a member per leased item in the leases sorted set; format 4
# holds a lease per batch.
STORAGE_FORMAT = "4"
# Format 4 plus the `open` marker and appends: written by runs seeded open, so that a wq that
# knows only format 4 (and would finish an open run as soon as it drained) refuses them (3 was
# format 2's).
OPEN_FORMAT = "5"
READABLE_FORMATS = (STORAGE_FORMAT, OPEN_FORMAT)
# The meta hash of a run sharded over sub-runs (`wq seed --shards N`): it holds no items, only
# the run's directory (SHARDS, SHARD_RUNS) beside total, kind, range, digest and seeded; each
# sub-run is a run of format 4 under its own hash tag. A wq that knows no shards refuses it.
SHARDED_FORMAT = "6"
SHARDS = "shards"
SHARD_RUNS = "shard_runs"  # the sub-runs' ids, in position order, joined by LIST_SEPARATOR
SHARD_LAYOUT = "shard_layout"  # which positions each shard holds: BLOCKS (when absent) or STRIPES
BLOCKS = "blocks"
STRIPES = "stripes"

# A batch record (the module docstring): left, first, count, then the two lists.
BATCH_SEPARATOR = ":"
LIST_SEPARATOR = ","

KIND_LIST = "list"
KIND_RANGE = "range"

# The ledger (see the module docstring).
RECORDS_PER_FIELD = 32
RECORD_WIDTH = 16
RECORD_FORMAT = ">BHI4I3I6"  # Lua struct notation; Python's struct has no 3- or 6-byte ints
ATTEMPT_FORMAT = ">HI"  # what a worker sends per item done: attempt number, duration in ms
ATTEMPT_WIDTH = struct.calcsize(ATTEMPT_FORMAT)
# The rest of a record after its state byte and its ATTEMPT_FORMAT bytes: worker and time, what
# the records of one complete.lua call share.
RECORD_TAIL_FORMAT = ">I3I6"
FIELD_WIDTH = RECORDS_PER_FIELD * RECORD_WIDTH
DONE = 1
DEAD = 2
HAS_OUTPUT = 0x80
STATE_MASK = 0x0F
UNKNOWN_MS = 0xFFFFFFFF
NO_WORKER = 0  # the worker of a record: none known (its worker died)


# The durations histogram (see the module docstring): upper bounds of its buckets in seconds;
# a last bucket, +Inf, follows. complete.lua and fail.lua get them in ms (DURATION_BUCKETS_MS).
DURATION_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
DURATION_BUCKETS_MS = tuple(round(b * 1000) for b in DURATION_BUCKETS_S)
DURATION_SUM_MS = "sum_ms"


class Durations(NamedTuple):
    """The durations hash, decoded."""

    counts: list[int]  # attempts per bucket, not cumulative; the last one is +Inf
    sum_ms: int

    @classmethod
    def of(cls, fields: dict[str, str]) -> "Durations":
        """From the hash's fields (HGETALL); an absent hash: no attempt counted yet."""
        return cls(
            counts=[int(fields.get(str(i), 0)) for i in range(len(DURATION_BUCKETS_S) + 1)],
            sum_ms=int(fields.get(DURATION_SUM_MS, 0)),
        )

    @classmethod
    def summed(cls, parts: "Sequence[Durations]") -> "Durations":
        """The histogram of several runs' attempts together (a sharded run's shards)."""
        counts = [sum(column) for column in zip(*(p.counts for p in parts), strict=True)]
        return cls(counts=counts, sum_ms=sum(p.sum_ms for p in parts))

    @property
    def observed(self) -> int:
        return sum(self.counts)

    def quantile_bound_s(self, q: float) -> float | None:
        """The upper bound of the bucket that holds the attempt at quantile q (0 < q <= 1):
        that share of attempts took at most this long (None: none timed, or past the last
        bound)."""
        rank = q * self.observed
        seen = 0
        for bound, n in zip(DURATION_BUCKETS_S, self.counts, strict=False):
            seen += n
            if n and seen >= rank:
                return bound
        return None

    @property
    def mean_s(self) -> float | None:
        """Mean attempt time in seconds; None before any attempt was timed."""
        return self.sum_ms / 1000 / self.observed if self.observed else None


class Record(NamedTuple):
    """One ledger record, decoded."""

    state: int  # DONE or DEAD
    has_output: bool
    attempts: int
    worker: int  # index in the workers hash; 0: none
    duration_ms: int | None
    finished_ms: int


# A record for Python's struct, which has no 3- or 6-byte integers: the worker number as 2 + 1
# bytes, the time as 4 + 2.
_RECORD = struct.Struct(">BHIHBIH")


def split_records(blob: bytes | None) -> list[Record | None]:
    """The RECORDS_PER_FIELD records of one ledger field (None: no record)."""
    if not blob:
        return [None] * RECORDS_PER_FIELD
    return [
        Record(
            state=head & STATE_MASK,
            has_output=bool(head & HAS_OUTPUT),
            attempts=attempts,
            worker=worker_high << 8 | worker_low,
            duration_ms=None if duration == UNKNOWN_MS else duration,
            finished_ms=time_high << 16 | time_low,
        )
        if head
        else None
        for head, attempts, duration, worker_high, worker_low, time_high, time_low in (
            _RECORD.iter_unpack(blob)
        )
    ]


def batch_positions(record: str) -> list[int]:
    """The positions of a batch record (the module docstring) that it has not settled: returned
    ones first, then the fresh ones."""
    _left, first, count, returned, settled = record.split(BATCH_SEPARATOR)
    gone = {int(p) for p in settled.split(LIST_SEPARATOR) if p}
    start = int(first)
    listed = [int(p) for p in returned.split(LIST_SEPARATOR) if p]
    return [p for p in [*listed, *range(start, start + int(count))] if p not in gone]


def chunk_fields(
    items: Sequence[str], chunk: int = ITEMS_PER_FIELD, first: int = 0
) -> Iterator[tuple[int, str]]:
    """(field, joined items) of the items hash for items in seed order, items[0] being at
    position `first`. When `first` is not a multiple of `chunk`, the first field yielded holds
    only the items that complete the field `first` lies in (an append joins it to the field's
    items already stored)."""
    head = (-first) % chunk
    if head and items:
        yield first // chunk, SEPARATOR.join(items[:head])
    for start in range(head, len(items), chunk):
        yield (first + start) // chunk, SEPARATOR.join(items[start : start + chunk])


def choose_chunk(items: Sequence[str]) -> int:
    """Items per field that cost Redis the fewest bytes for items like these (a sample of the
    run's first items, as JSON text). A field's value is allocated at its exact size, rounded
    up by the allocator to a size class (jemalloc's are a quarter of a power of two apart, so
    up to 25% over), and the hash spends about FIELD_OVERHEAD bytes more per field. With 32
    items to every field, 64-byte items paid about 17 bytes each and 256-byte ones 65; a count
    that fills the fields to just under a class boundary pays a few. The model is
    computed over the sample's whole fields, for each count from 1 to MAX_CHUNK whose fields
    stay under MAX_FIELD_BYTES, and the smallest count within CHUNK_SLACK bytes per item of
    the best wins (smaller fields are cheaper to lease). Too small a sample to tell (a run of
    fewer than CHUNK_SAMPLE_MIN items, whose memory does not matter) keeps ITEMS_PER_FIELD."""
    n = len(items)
    if n < CHUNK_SAMPLE_MIN:
        return ITEMS_PER_FIELD
    ends = [0] * (n + 1)  # ends[i]: bytes of items[:i], each with its separator
    total = 0
    for i, item in enumerate(items, start=1):
        total += len(item.encode()) + 1
        ends[i] = total
    best: list[tuple[float, int]] = []
    for chunk in range(1, MAX_CHUNK + 1):
        fields = n // chunk
        if fields < CHUNK_FIELDS_MIN:
            break
        if chunk > 1 and ends[fields * chunk] / fields > MAX_FIELD_BYTES:
            break  # one item per field is the least, however big the items
        cost = 0
        for f in range(fields):
            value = ends[(f + 1) * chunk] - ends[f * chunk] - 1
            cost += _value_alloc(value) + FIELD_OVERHEAD
        best.append((cost / (fields * chunk), chunk))
    if not best:
        return ITEMS_PER_FIELD
    least = min(cost for cost, _ in best)
    return min(chunk for cost, chunk in best if cost <= least + CHUNK_SLACK)


# choose_chunk's model of Redis 7's hash table (see its docstring), in bytes per field: the
# dict entry (24, in a 32-byte class), the field name (a short sds, 16) and the table's bucket
# pointers (8 to 16).
FIELD_OVERHEAD = 60
CHUNK_SLACK = 0.25
CHUNK_SAMPLE_MIN = 1024  # items
CHUNK_FIELDS_MIN = 16  # fields of the sample a count is judged on


def _value_alloc(length: int) -> int:
    """Bytes the allocator gives an sds string of `length` bytes (header and terminator
    included): jemalloc's size classes, 16 apart up to 128, then four per power of two."""
    size = length + 1 + (3 if length < 256 else 5 if length < 65536 else 9)
    if size <= 128:
        return -(-size // 16) * 16
    step = 1 << ((size - 1).bit_length() - 3)
    return -(-size // step) * step


def split_chunk(blob: str) -> list[str]:
    """The items of one field of the items hash."""
    return blob.split(SEPARATOR)


def field_of(position: int, chunk: int) -> tuple[int, int]:
    """(field, index within the field) of a list run's position."""
    return divmod(position, chunk)


def range_item(start: int, step: int, position: int) -> str:
    """A range run's item at `position`, as JSON text."""
    return str(start + position * step)
