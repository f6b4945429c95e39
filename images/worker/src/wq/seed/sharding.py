"""Seeding a run sharded over sub-runs (`wq seed --shards N`, wq.store.layout: a sharded run):
each shard seeded as a run of its own, then the run's directory, once they all are; so that a
seeder that dies half-way is retried to the same end, and workers see all shards or none."""

from wq.base.errors import ConfigError
from wq.seed.items_source import ItemRange
from wq.seed.seeder import SeedResult, already_seeded, seed_range
from wq.store import digests, layout
from wq.store.queue import RunQueue


def seed_range_sharded(queue: RunQueue, item_range: ItemRange, shards: int) -> SeedResult:
    """A range run in `shards` blocks of consecutive positions, a sub-run each."""
    start, step, count = item_range.start, item_range.step, item_range.count
    digest = digests.range_digest(start, step, count)
    if queue.reading.is_seeded():
        return _seeded_already(queue, digest, shards)
    if count < shards:
        raise ConfigError(f"--shards {shards} is more shards than the run's {count} item(s)")
    runs = queue.shards.place(shards)
    for run, (first, size) in zip(runs, layout.shard_bounds(count, shards), strict=True):
        lo = start + first * step
        seed_range(queue.shard(run), ItemRange(lo, lo + size * step, step))
    if queue.shards.commit(count, start, step, digest, runs):
        return SeedResult(total=count, seeded_now=True, digest=digest)
    return _seeded_already(queue, digest, shards)


def _seeded_already(queue: RunQueue, digest: str, shards: int) -> SeedResult:
    """A retry: the same items in the same number of shards is a no-op."""
    result = already_seeded(queue, digest)
    had = len(queue.shard_runs()) or 1
    if had != shards:
        raise ConfigError(
            f"run {queue.run} was already seeded in {had} shard(s), not {shards}; a run is "
            "not resharded"
        )
    return result
