"""Open runs sharded over sub-runs (`wq seed --open|--append|--progressive --shards N`,
wq.store.shard_layout: stripes): each shard an open run of its own, the run's directory open
too. A chunk of appended items goes to the shards a piece per stripe, in the run's order, then
raises the directory's total (with a progressive seeder's progress): workers lease each piece
as soon as its shard has it, readers read the run up to the directory's total.

A chunk's pieces go in under the run's append lock (Appends.lock), so that two appenders never
lay out pieces at the same positions. Should an appender die half-way, its pieces in the
shards are a prefix of its chunk in the run's order: a progressive seeder's retry finds them
in place and skips them (exactly once); the next plain appender adopts them into the run (what
a failed append had added stays, as on a run that is not sharded).
"""

from collections.abc import Iterator

from wq.base.errors import ConfigError
from wq.seed.seeder import digest_batches, seed_items
from wq.store import layout, shard_layout
from wq.store.appends import Appended, AppendRefusal, SealReply
from wq.store.queue import RunQueue

# Seconds an appender waits for another to finish its chunk.
LOCK_WAIT_S = 60


def open_sharded(queue: RunQueue, shards: int, chunk: int = layout.ITEMS_PER_FIELD) -> None:
    """Seed the run open and empty in `shards` shards, then its directory; a no-op if another
    seeder opened it first."""
    runs = queue.shards.place(shards)
    for run in runs:
        seed_items(queue.shard(run), [], open_run=True, chunk=chunk)
    queue.shards.commit(0, "", runs, None, open_run=True)


def append_pieces(
    queue: RunQueue, runs: list[str], chunk: list[str], progress: tuple[int, str] | None
) -> int:
    """Append `chunk` after the run's items, a piece per stripe (with a progressive seeder's
    `progress`, as Appends.append takes it); the run's total after it."""
    with queue.appends.locked(LOCK_WAIT_S):
        state = queue.appends.open_state()
        if not state.open:
            raise sealed_error(queue)
        shards = [queue.shard(run) for run in runs]
        total = state.total
        if progress is None:
            total = _adopt_leftovers(queue, shards, total)
        elif queue.appends.progress().items != progress[0]:
            raise other_seeder_error(queue)  # before its pieces go in at another's positions
        for piece in shard_layout.stripes_from(total, len(chunk), len(runs)):
            items = chunk[piece.offset - total : piece.offset - total + piece.size]
            _append_piece(shards[piece.shard], piece, items)
        if progress is not None:  # the seeder is alive, where each shard's workers look
            for shard in shards:
                shard.appends.touch_seeder()
        outcome = queue.appends.append(total, [], len(chunk), progress)
    if outcome is AppendRefusal.PROGRESS_CHANGED:
        raise other_seeder_error(queue)
    if not isinstance(outcome, Appended):
        raise sealed_error(queue)
    return outcome.total


def _append_piece(shard: RunQueue, piece: shard_layout.Piece, items: list[str]) -> None:
    """One piece into its shard at its own positions; a piece found there whole (put by an
    earlier attempt of the same chunk) is left as it is."""
    state = shard.appends.open_state()
    if state.total == piece.first + piece.size:
        return
    if state.total != piece.first:
        raise ConfigError(
            f"shard {shard.run!r} holds {state.total} items where {piece.first} were expected: "
            "items were added to it by hand"
        )
    fields = list(layout.chunk_fields(items, state.chunk, first=piece.first))
    outcome = shard.appends.append(piece.first, fields, piece.size)
    if not isinstance(outcome, Appended):
        raise ConfigError(f"shard {shard.run!r} refused a piece of the run: {outcome.name}")


def _adopt_leftovers(queue: RunQueue, shards: list[RunQueue], total: int) -> int:
    """The pieces an appender that died had put in past the run's `total`, made part of the
    run; the run's total after them."""
    totals = [shard.appends.open_state().total for shard in shards]
    end = total
    while True:
        rest_of_stripe = shard_layout.STRIPE - end % shard_layout.STRIPE
        [piece] = shard_layout.stripes_from(end, rest_of_stripe, len(shards))
        there = min(totals[piece.shard] - piece.first, piece.size)
        if there <= 0:
            break
        end += there
        if there < piece.size:
            break
    if end > total:
        queue.appends.append(total, [], end - total)
    return end


def seal_sharded(queue: RunQueue, runs: list[str]) -> SealReply:
    """Seal every shard, then the directory, under the append lock (no chunk is half in):
    the directory's seal, as Appends.seal gives it."""
    with queue.appends.locked(LOCK_WAIT_S):
        for run in runs:
            queue.shard(run).appends.seal()
        return queue.appends.seal()


def sharded_items_digest(queue: RunQueue, runs: list[str], total: int) -> str:
    """digests.ItemsDigest of a sharded list run's first `total` items, in the run's order,
    read back from its shards a piece at a time."""
    shards = [queue.shard(run) for run in runs]
    sizes = [shard.appends.open_state().chunk for shard in shards]

    def pieces() -> Iterator[list[str]]:
        for piece in shard_layout.pieces(total, len(runs), striped=True):
            size = sizes[piece.shard]
            first, last = piece.first // size, (piece.first + piece.size - 1) // size
            blobs = shards[piece.shard].appends.item_fields(first, last - first + 1)
            items = layout.SEPARATOR.join(blobs).split(layout.SEPARATOR)
            skip = piece.first - first * size
            yield items[skip : skip + piece.size]

    return digest_batches(pieces())


def other_seeder_error(queue: RunQueue) -> ConfigError:
    return ConfigError(
        f"another seeder is adding the same source to run {queue.run!r} (its progress moved "
        "meanwhile): run one seeder per run"
    )


def sealed_error(queue: RunQueue) -> ConfigError:
    return ConfigError(
        f"run {queue.run!r} is sealed: it takes no more items (append to a run seeded with "
        "--open, before `wq seal`)"
    )
