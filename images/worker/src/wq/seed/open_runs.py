"""Open runs: items added while workers process the run, until it is sealed.

A run seeded with `wq seed --open` (or started by the first `wq seed --append`) is open: each
append adds its items in chunks, each chunk one Lua call (append.lua) that makes the whole
chunk visible at once, so a worker never leases half of one. Workers that drain an open run
wait for more items; only once it is sealed (`wq seal`) does a drained run count as finished,
and its workers exit 0.

The digest of an open run (digests.ItemsDigest, over all its items in position order) is
computed at the seal, by reading the items back a window at a time: appends from several
sources, in any chunks, give the digest of their items in the order they went in. Each
append reports the digest of its own items (what `wq digest` gives for its source).

An append is not idempotent: a retried append adds its items again. What a failing source had
appended before it failed stays (each chunk whole), and the error says how many items went in.
"""

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from wq.base.errors import ConfigError, SourceError, WqError
from wq.seed.formats import Batches
from wq.seed.open_shards import (
    append_pieces,
    open_sharded,
    other_seeder_error,
    seal_sharded,
    sealed_error,
    sharded_items_digest,
)
from wq.seed.seeder import SeedResult, digest_batches, seed_items
from wq.seed.sharding import check_shards
from wq.store import digests, layout
from wq.store.appends import Appended, AppendRefusal, SealOutcome
from wq.store.queue import RunQueue

# Items per append call, and about how many bytes of them: each call holds Redis for about a
# millisecond per 300 kB.
APPEND_ITEMS = layout.ITEMS_PER_FIELD * 1024
APPEND_BYTES = 1 << 20
# Fields of the items hash read per call while computing a sealed run's digest.
DIGEST_FIELDS = 1024


@dataclass(frozen=True)
class AppendResult:
    appended: int
    total: int  # of the run, after the last chunk
    digest: str  # of the items appended (digests.ItemsDigest)


@dataclass(frozen=True)
class SealResult:
    sealed_now: bool  # False: it was sealed already (or never open)
    total: int
    digest: str | None  # None: a run seeded before wq recorded digests

    def describe(self, run: str) -> str:
        outcome = "sealed" if self.sealed_now else "was sealed already"
        return f"run {run} {outcome}: {self.total} item(s), digest {self.digest or '-'}"


def append(queue: RunQueue, batches: Batches, shards: int = 1) -> AppendResult:
    """Add items to an open run, chunk by chunk; an unseeded run is seeded open first (in
    `shards` shards: wq.seed.open_shards)."""
    pieces = chunks(batches, APPEND_ITEMS, APPEND_BYTES)
    try:
        # The first chunk is read before the run is opened: a source that fails at once, or
        # holds no items (refused unless allowed: ItemsSource), leaves Redis as it was.
        first = list(itertools.islice(pieces, 1))
    except SourceError as exc:
        exc.args = (f"{exc}; nothing of it was appended: retry",)
        raise
    seeded, is_open, total, size = queue.appends.open_state()
    if not seeded:
        _open(queue, shards)  # a no-op if another appender opened it first
        seeded, is_open, total, size = queue.appends.open_state()
    if not is_open:
        raise sealed_error(queue)
    put = _appender(queue, shards, size)
    appended = 0
    digest = digests.ItemsDigest()
    try:
        for chunk in itertools.chain(first, pieces):
            total = put(chunk, total, None)
            digest.add_field(layout.SEPARATOR.join(chunk))
            appended += len(chunk)
    except WqError as exc:
        if appended:
            exc.args = (
                f"{exc}; {appended} item(s) of this source were appended before (a retry "
                "appends them again)",
            )
        elif isinstance(exc, SourceError):
            exc.args = (f"{exc}; nothing of it was appended: retry",)
        raise
    return AppendResult(appended=appended, total=total, digest=digest.hexdigest())


# Appends a chunk to a run of a total (a sharded run: whatever its total is by then), with a
# progressive seeder's progress; returns the run's total after it.
Put = Callable[[list[str], int, "tuple[int, str] | None"], int]


def open_sharded_run(queue: RunQueue, shards: int) -> SeedResult:
    """`wq seed --open --shards N`: the run open and empty in `shards` shards; a retry is a
    no-op, another shard count an error."""
    seeded_now = not queue.reading.is_seeded()
    if seeded_now:
        _open(queue, shards)
    check_shards(queue, len(queue.shard_runs()), shards)
    return SeedResult(total=queue.reading.total(), seeded_now=seeded_now, digest=None)


def _open(queue: RunQueue, shards: int, chunk: int = layout.ITEMS_PER_FIELD) -> None:
    """Seed the run open and empty, in `shards` shards."""
    if shards > 1:
        open_sharded(queue, shards, chunk)
    else:
        seed_items(queue, [], open_run=True, chunk=chunk)


def _appender(queue: RunQueue, shards: int, size: int) -> Put:
    """How chunks go into the run: whole into its items, or a piece per stripe into its
    shards; a run seeded in another number of shards than asked for is an error (1: any)."""
    runs = queue.shard_runs()
    if shards > 1:
        check_shards(queue, len(runs), shards)
    if runs:
        return lambda chunk, _total, progress: append_pieces(queue, runs, chunk, progress)
    return lambda chunk, total, progress: _append_chunk(queue, chunk, total, size, progress)


def _append_chunk(
    queue: RunQueue,
    chunk: list[str],
    total: int,
    size: int,
    progress: tuple[int, str] | None = None,
) -> int:
    """Append the items of `chunk` to a run of `total` items with `size` items per field (for
    a progressive seeder: with its `progress`, as Appends.append takes it)."""
    while True:
        fields = list(layout.chunk_fields(chunk, size, first=total))
        outcome = queue.appends.append(total, fields, len(chunk), progress)
        if isinstance(outcome, Appended):
            return outcome.total
        if outcome is AppendRefusal.PROGRESS_CHANGED:
            raise other_seeder_error(queue)
        if outcome is AppendRefusal.TOTAL_CHANGED:
            # Another appender went first: lay the chunk out after its items.
            state = queue.appends.open_state()
            is_open, total = state.open, state.total
            if is_open:
                continue
        raise sealed_error(queue)


@dataclass(frozen=True)
class ProgressiveResult:
    appended: int  # items of the source this call added (0: all were in already)
    resumed_after: int  # items of the source an earlier attempt had added
    seal: SealResult


def seed_progressively(queue: RunQueue, batches: Batches, shards: int = 1) -> ProgressiveResult:
    """Seed a run open and append the source's items chunk by chunk as they are read, then
    seal it: workers start on the first chunk while the rest is read. Exactly once across
    retries: each chunk goes in with the count and digest of the source's items in so far
    (append.lua), and a retry reads the source again, checks that its first items are those,
    and appends only the rest. A sealed run whose recorded progress is the whole source is
    left as it is."""
    pieces = chunks(batches, APPEND_ITEMS, APPEND_BYTES)
    first = next(pieces, [])
    seeded, is_open, total, size = queue.appends.open_state()
    if not seeded:
        _open(queue, shards, layout.choose_chunk(first))
        seeded, is_open, total, size = queue.appends.open_state()
    put = _appender(queue, shards, size)
    touched = [queue, *(queue.shard(run) for run in queue.shard_runs())]
    recorded = queue.appends.progress()
    done, done_digest = recorded.items, recorded.digest
    if is_open:
        _touch(touched)  # a retry reads again what is in: workers wait meanwhile
    digest = digests.ItemsDigest()
    read = appended = 0
    try:
        for chunk in itertools.chain([first], pieces):
            piece = chunk
            if read < done:  # what an earlier attempt added: read again, compared, skipped
                skip = piece[: done - read]
                digest.add_field(layout.SEPARATOR.join(skip))
                read += len(skip)
                if read == done and digest.hexdigest() != done_digest:
                    raise ConfigError(
                        f"run {queue.run!r} holds {done} items of a source whose first {done} "
                        "items differ from this one's: seed it from the source it was seeded "
                        "from, or use another run id"
                    )
                piece = piece[len(skip) :]
                if is_open:
                    _touch(touched)
            if not piece:
                continue
            if not is_open:
                raise sealed_error(queue)
            digest.add_field(layout.SEPARATOR.join(piece))
            total = put(piece, total, (read, digest.hexdigest()))
            read += len(piece)
            appended += len(piece)
    except WqError as exc:
        if isinstance(exc, SourceError):
            exc.args = (f"{exc}; {read} item(s) of it are in the run: a retry adds the rest, once",)
        raise
    if read < done:
        raise ConfigError(
            f"run {queue.run!r} holds {done} items of its source, and this source has only "
            f"{read}: seed it from the source it was seeded from, or use another run id"
        )
    # The run holds this source's items alone (in order) if its total is what was read.
    sealed = seal(queue, known=(read, digest.hexdigest()))
    return ProgressiveResult(appended=appended, resumed_after=done, seal=sealed)


def _touch(queues: list[RunQueue]) -> None:
    """Mark the run's progressive seeder alive, where its workers look (each shard's)."""
    for q in queues:
        q.appends.touch_seeder()


def chunks(batches: Iterable[list[str]], most: int, most_bytes: int) -> Iterator[list[str]]:
    """The items of batches in lists of at most `most` items and about `most_bytes` bytes
    (the item that crosses the bytes ends its list)."""
    chunk: list[str] = []
    size = 0
    for batch in batches:
        for item in batch:
            chunk.append(item)
            size += len(item)
            if len(chunk) >= most or size >= most_bytes:
                yield chunk
                chunk, size = [], 0
    if chunk:
        yield chunk


def seal(queue: RunQueue, known: tuple[int, str] | None = None) -> SealResult:
    """Close the run to appends and record the digest of all its items; sealing a sealed run
    records a digest that is missing (a seal interrupted before it) and changes nothing else.
    `known`: (count, digest) of the first items of the run, from the caller that appended
    them; when the run holds exactly those at the seal, they are not read back."""
    runs = queue.shard_runs()
    reply = seal_sharded(queue, runs) if runs else queue.appends.seal()
    if reply.outcome is SealOutcome.NOT_SEEDED:
        raise ConfigError(f"run {queue.run!r} is not seeded: there is nothing to seal")
    digest = reply.digest
    if digest is None and reply.was_open:
        if known is not None and known[0] == reply.total:
            digest = known[1]
        elif runs:
            digest = sharded_items_digest(queue, runs, reply.total)
        else:
            digest = items_digest(queue, reply.total, queue.appends.open_state().chunk)
        queue.appends.record_digest(digest)
    return SealResult(
        sealed_now=reply.outcome is SealOutcome.SEALED_NOW, total=reply.total, digest=digest
    )


def items_digest(queue: RunQueue, total: int, size: int) -> str:
    """digests.ItemsDigest of a list run's first `total` items, `size` to a field of the items
    hash, read from Redis a window of fields at a time."""
    fields = -(-total // size)
    return digest_batches(
        [blob]
        for first in range(0, fields, DIGEST_FIELDS)
        for blob in queue.appends.item_fields(first, min(DIGEST_FIELDS, fields - first))
    )
