"""Where a sharded run's positions live (`wq seed --shards N`, format layout.SHARDED_FORMAT).

A sharded run spreads its positions over N sub-runs, each a run of wq.store.layout's layout
under a hash tag of its own (keys.shard_run_id), so that a Redis Cluster puts them on different
nodes; each shard holds its positions as its own positions 0, 1, ... in the run's order. The
run's own meta hash is its directory, written once all its shards are seeded (seed_shards.lua):
total, kind, range_start, range_step and digest of the whole run, seeded, format, shards (N),
shard_runs (the sub-runs' ids) and shard_layout. Its other keys stay empty.

shard_layout says which positions shard k holds:
  blocks (absent: a range run)  the block shard_bounds(total, N)[k] of consecutive positions:
                 a range shard computes its items from its own range_start and range_step
  stripes (listed items)  every N-th stripe of STRIPE positions from stripe k on, dealt as the
                 items are read, so that a source streamed once fills every shard; the last
                 stripe may be shorter
Readers walk a run in `pieces` (consecutive positions within one shard) in the run's order.
"""

import operator
from collections.abc import Callable, Iterator
from functools import partial
from typing import NamedTuple

# Positions per stripe: a multiple of the readers' window (wq.store.reading.WINDOW), so that a
# reader reads a stripe in whole windows, and large enough that a seeder's round trips carry
# many items.
STRIPE = 1024


class Piece(NamedTuple):
    """Consecutive positions of a run that one shard holds."""

    shard: int  # index of the shard in the directory's shard_runs
    first: int  # the shard's own position of the piece's first item
    size: int
    offset: int  # the run's position of the piece's first item


def shard_bounds(total: int, shards: int) -> list[tuple[int, int]]:
    """(first position, count) of each shard of a run of `total` items laid out in blocks,
    sizes differing by one at most, so that a report in seed order reads the shards one after
    the other."""
    edges = [total * k // shards for k in range(shards + 1)]
    return [(edges[k], edges[k + 1] - edges[k]) for k in range(shards)]


def pieces(total: int, shards: int, striped: bool) -> Iterator[Piece]:
    """The run's positions 0 .. total - 1 as pieces, in the run's order."""
    if not striped:
        for k, (first, count) in enumerate(shard_bounds(total, shards)):
            yield Piece(k, 0, count, first)
        return
    yield from stripes_from(0, total, shards)


def stripes_from(start: int, count: int, shards: int) -> Iterator[Piece]:
    """The run's positions start .. start + count - 1 of a run laid out in stripes, as pieces
    (a piece per stripe, or part of one), in the run's order."""
    position, end = start, start + count
    while position < end:
        stripe, within = divmod(position, STRIPE)
        turn, shard = divmod(stripe, shards)
        size = min(STRIPE - within, end - position)
        yield Piece(shard, turn * STRIPE + within, size, position)
        position += size


def run_positions(shard: int, shards: int, striped: bool, total: int) -> Callable[[int], int]:
    """The run's position of each of shard `shard`'s own positions (the inverse of `pieces`),
    in a run of `total` items."""
    if not striped:
        return partial(operator.add, shard_bounds(total, shards)[shard][0])

    def of(local: int) -> int:
        turn, within = divmod(local, STRIPE)
        return (turn * shards + shard) * STRIPE + within

    return of
