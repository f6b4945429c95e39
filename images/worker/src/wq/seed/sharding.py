"""Seeding a run sharded over sub-runs (`wq seed --shards N`, wq.store.shard_layout): each
shard seeded as a run of its own, then the run's directory, once they all are; so that a
seeder that dies half-way is retried to the same end, and workers see all shards or none.

A range is split in blocks of consecutive positions (each shard computes its items). Listed
and streamed items are dealt to the shards a stripe at a time as they are read, each shard's
stripes staged in a staging hash of its own (as wq.seed.seeder stages a run): the source is
read once, and the seeder holds a few stripes per shard at a time.
"""

import secrets

from wq.base.errors import ConfigError
from wq.seed.formats import Batches
from wq.seed.items_source import ItemRange
from wq.seed.seeder import (
    STAGE_BYTES,
    STAGE_ITEMS,
    SeedResult,
    already_seeded,
    commit_staged,
    digest_batches,
    dropped_on_failure,
    seed_range,
)
from wq.store import digests, layout, shard_layout
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
    for run, (first, size) in zip(runs, shard_layout.shard_bounds(count, shards), strict=True):
        lo = start + first * step
        seed_range(queue.shard(run), ItemRange(lo, lo + size * step, step))
    if queue.shards.commit(count, digest, runs, (start, step)):
        return SeedResult(total=count, seeded_now=True, digest=digest)
    return _seeded_already(queue, digest, shards)


def seed_listed_sharded(queue: RunQueue, batches: Batches, shards: int) -> SeedResult:
    """Listed or streamed items in `shards` sub-runs, stripe k going to shard k % shards. A
    source that fails half-way seeds nothing (its staging hashes are dropped, or expire)."""
    if queue.reading.is_seeded():
        return _seeded_already(queue, digest_batches(batches), shards)
    runs = queue.shards.place(shards)
    stages = [_ShardStage(queue.shard(run), shards) for run in runs]
    digest = digests.ItemsDigest()
    total = 0
    with dropped_on_failure([(stage.queue, stage.staging) for stage in stages]):
        for n, stripe in enumerate(_stripes(batches)):
            digest.add_field(layout.SEPARATOR.join(stripe))
            stages[n % shards].add(stripe)
            total += len(stripe)
        for stage in stages:
            stage.flush(whole=False)
    for stage in stages:
        stage.commit()
    if queue.shards.commit(total, digest.hexdigest(), runs, None):
        return SeedResult(total=total, seeded_now=True, digest=digest.hexdigest())
    return _seeded_already(queue, digest.hexdigest(), shards)


def _stripes(batches: Batches) -> Batches:
    """The items of batches in lists of shard_layout.STRIPE (the last one may be shorter),
    sliced once each from a batch however large (an items file is one batch)."""
    held: list[str] = []
    for batch in batches:
        at = 0
        if held:
            at = shard_layout.STRIPE - len(held)
            held += batch[:at]
            if len(held) < shard_layout.STRIPE:
                continue
            yield held
        while at + shard_layout.STRIPE <= len(batch):
            yield batch[at : at + shard_layout.STRIPE]
            at += shard_layout.STRIPE
        held = batch[at:]
    if held:
        yield held


class _ShardStage:
    """One shard's items as they are dealt, staged a group of whole fields at a time."""

    def __init__(self, queue: RunQueue, shards: int) -> None:
        self.queue = queue
        self.staging = queue.keys.staging_items(secrets.token_hex(8))
        # What the seeder holds of this shard before staging it: a share of what it holds for
        # a run that is not sharded, and a stripe at least.
        self.most = max(shard_layout.STRIPE, STAGE_ITEMS // shards)
        self.most_bytes = STAGE_BYTES // shards
        self.chunk = 0  # items per field, chosen from the shard's first stripe
        self.held: list[str] = []
        self.held_bytes = 0
        self.staged = 0
        self.digest = digests.ItemsDigest()

    def add(self, stripe: list[str]) -> None:
        if not self.chunk:
            self.chunk = layout.choose_chunk(stripe)
        self.held += stripe
        self.held_bytes += sum(map(len, stripe))
        if len(self.held) >= self.most or self.held_bytes >= self.most_bytes:
            self.flush(whole=True)

    def flush(self, whole: bool) -> None:
        """Stage what is held: with `whole`, only whole fields (the rest is kept for the next
        stripes); else all of it (the shard's last items)."""
        cut = len(self.held) // self.chunk * self.chunk if whole and self.chunk else len(self.held)
        if not cut:
            return
        fields = list(layout.chunk_fields(self.held[:cut], self.chunk, first=self.staged))
        for _, joined in fields:
            self.digest.add_field(joined)
        self.queue.seeding.stage_fields(self.staging, fields)
        self.staged += cut
        self.held = self.held[cut:]
        self.held_bytes = sum(map(len, self.held))

    def commit(self) -> None:
        """Commit the shard as a list run (a no-op if a retried seeder committed it already)."""
        commit_staged(
            self.queue,
            self.staging,
            self.staged,
            self.digest.hexdigest(),
            self.chunk or layout.ITEMS_PER_FIELD,
        )


def _seeded_already(queue: RunQueue, digest: str, shards: int) -> SeedResult:
    """A retry: the same items in the same number of shards is a no-op."""
    result = already_seeded(queue, digest)
    check_shards(queue, len(queue.shard_runs()), shards)
    return result


def check_shards(queue: RunQueue, had: int, shards: int) -> None:
    """A ConfigError if the run, seeded in `had` shards (0: not sharded), is asked for in
    another number of shards."""
    if (had or 1) != shards:
        raise ConfigError(
            f"run {queue.run} was already seeded in {had or 1} shard(s), not {shards}; a run "
            "is not resharded"
        )
