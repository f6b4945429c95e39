"""Seeding a run: idempotent and atomic.

Items are staged in a hash private to this seeder (with an expiry, in case it dies), then one
Lua call renames it into place and sets the seeded marker and the digest of the items. A
retried seeder finds the marker and does nothing, and a seeder with other items is refused;
workers wait for the marker, so they never see a half-seeded run. An adopted list is staged
the same way, copied a step at a time, so that no Redis call grows with the list. Items
streamed from a URL or standard input (wq.seed.sources) are staged a group at a time as they are
read: the seeder's memory stays the same for any number of items, and a source that fails
half-way leaves nothing but its staging hash, which is dropped (or expires).
"""

import contextlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from wq.base.errors import ConfigError, SourceChanged, SourceError
from wq.base.item import encode
from wq.seed.formats import Batches
from wq.seed.items_source import ItemRange, ItemsSource
from wq.store import digests, layout
from wq.store.queue import RunQueue


@dataclass(frozen=True)
class SeedResult:
    total: int
    seeded_now: bool  # False when the run had been seeded already (a retry)
    digest: str | None  # of the run's items (wq.store.layout); None: seeded before digests


def seed_from(queue: RunQueue, source: ItemsSource, open_run: bool = False) -> SeedResult:
    """Seed the run from whichever source was given; `open_run`: the run takes appends until
    sealed (wq.seed.open_runs), and may start with no items."""
    source.check(none_ok=open_run)
    if open_run and (source.item_range or source.adopt_list):
        raise ConfigError(
            "an open run takes listed items: --open cannot go with --range or --adopt-list"
        )
    if open_run:  # it may start empty: its items may all come by appends
        source = replace(source, allow_empty=True)
    if source.item_range:
        return seed_range(queue, ItemRange.parse(source.item_range))
    if source.adopt_list:
        return adopt_list(queue, source.adopt_list)
    if source.streamed:
        return seed_stream(queue, source.batches(), open_run)
    return seed_items(queue, [item for batch in source.batches() for item in batch], open_run)


def digest_of(source: ItemsSource) -> str:
    """The digest that seeding these items records (digests.ItemsDigest, range_digest),
    computed here, without Redis: `wq digest` proves which items a run was seeded with."""
    source.check()
    if source.adopt_list:
        raise ConfigError(
            "the items of a list in Redis are only known once adopted: its run's digest is in "
            "`wq status`"
        )
    if source.item_range:
        r = ItemRange.parse(source.item_range)
        return digests.range_digest(r.start, r.step, r.count)
    return digest_batches(source.batches())


def digest_batches(batches: Iterable[Sequence[str]]) -> str:
    """ItemsDigest of JSON-encoded items in batches (any batch sizes give the same digest)."""
    digest = digests.ItemsDigest()
    for batch in batches:
        if batch:
            digest.add_field(layout.SEPARATOR.join(batch))
    return digest.hexdigest()


def seed_items(
    queue: RunQueue,
    items: Sequence[str],
    open_run: bool = False,
    chunk: int = layout.ITEMS_PER_FIELD,
) -> SeedResult:
    """Seed JSON-encoded items in order; a no-op if the run is already seeded with the same
    items, a ConfigError if with others. An empty open run is laid out `chunk` items to a
    field, for the items appended later; a run seeded with items, as choose_chunk finds."""
    if queue.reading.is_seeded():
        return already_seeded(queue, digests.list_digest(items))
    staging = queue.keys.staging_items(secrets.token_hex(8))
    if not items:
        digest = digests.list_digest(items)
        return _commit(queue, staging, 0, layout.KIND_LIST, 0, 1, digest, open_run, chunk)
    chunk = layout.choose_chunk(items[:STAGE_ITEMS])
    digest = queue.seeding.stage_items(staging, items, chunk)
    return _commit(queue, staging, len(items), layout.KIND_LIST, 0, 1, digest, open_run, chunk)


# Items staged per round trip while streaming, at most (a multiple of the run's chunk), and
# about how many bytes of them; the first group is the sample choose_chunk lays the run out
# from.
STAGE_ITEMS = layout.ITEMS_PER_FIELD * 1024
STAGE_BYTES = 8 << 20


def seed_stream(queue: RunQueue, batches: Batches, open_run: bool = False) -> SeedResult:
    """Seed items read as they come, staged a group at a time and committed once at the end
    (or dropped, if the source fails): workers see the whole run or nothing. A run seeded
    already is compared by digest, which reads the source again."""
    if queue.reading.is_seeded():
        return already_seeded(queue, digest_batches(batches))
    staging = queue.keys.staging_items(secrets.token_hex(8))
    digest = digests.ItemsDigest()
    total = 0
    chunk = layout.ITEMS_PER_FIELD
    with dropped_on_failure([(queue, staging)]):
        for chunk, group in staged_groups(batches, STAGE_ITEMS):
            fields = list(layout.chunk_fields(group, chunk, first=total))
            for _, joined in fields:
                digest.add_field(joined)
            queue.seeding.stage_fields(staging, fields)
            total += len(group)
    hexdigest = digest.hexdigest()
    return _commit(queue, staging, total, layout.KIND_LIST, 0, 1, hexdigest, open_run, chunk)


@contextlib.contextmanager
def dropped_on_failure(stagings: Sequence[tuple[RunQueue, str]]) -> Iterator[None]:
    """Staging hashes (each on its run's queue) being filled from a source: dropped if that
    fails, so that nothing is seeded (else they expire: seeding.STAGING_TTL_S), and a source's
    error says so."""
    try:
        yield
    except BaseException as exc:
        for queue, staging in stagings:
            with contextlib.suppress(Exception):
                queue.seeding.drop_staging(staging)
        if isinstance(exc, SourceError):
            exc.args = (f"{exc}; nothing was seeded: retry",)
        raise


def staged_groups(
    batches: Iterable[list[str]], most: int, most_bytes: int = STAGE_BYTES
) -> Iterator[tuple[int, list[str]]]:
    """(chunk, group): the items of batches regrouped in groups of at most `most` items and
    about `most_bytes` bytes, each a multiple of `chunk` items so that it starts a field of the
    items hash (the last one may be shorter). `chunk` is layout.choose_chunk's for the first
    group's items, the same for every group."""
    group: list[str] = []
    size = chunk = 0
    for batch in batches:
        group += batch
        size += sum(map(len, batch))
        while len(group) >= most or size >= most_bytes:
            if not chunk:
                chunk = layout.choose_chunk(group[:most])
            cut = min(len(group), most) // chunk * chunk
            if not cut:
                break  # big items: read on to a whole field
            head, group = group[:cut], group[cut:]
            size -= sum(map(len, head))
            yield chunk, head
    if group:
        yield chunk or layout.choose_chunk(group), group


def seed_range(queue: RunQueue, item_range: ItemRange) -> SeedResult:
    """A range run stores no items: each worker computes them (layout.range_item)."""
    start, step, count = item_range.start, item_range.step, item_range.count
    staging = queue.keys.staging_items("range")
    digest = digests.range_digest(start, step, count)
    return _commit(queue, staging, count, layout.KIND_RANGE, start, step, digest)


# Items of an adopted list copied per call: a few milliseconds of Redis time.
ADOPT_STEP = layout.ITEMS_PER_FIELD * 1024


def adopt_list(queue: RunQueue, source: str, step: int = ADOPT_STEP) -> SeedResult:
    """Turn a plain list filled by hand into this run (the Kubernetes docs' workflow)."""
    if not queue.reading.is_seeded():
        adoption = Adoption(queue, source, step)
        while adoption.step():
            pass
        return adoption.commit()
    # A retry after the commit finds the list gone; a list filled again must hold the same
    # items, which are only read.
    reading = Adoption(queue, source, step, stage=False)
    while reading.step():
        pass
    return already_seeded(queue, reading.digest.hexdigest() if reading.copied else None)


class Adoption:
    """Adopting a plain list, `step` items at a time: each step copies the next ones into
    a staging hash, laid out like the items hash and private to this seeder; the commit
    (seed.lua) renames it into place, sets the seeded marker and unlinks the list in one
    call, so workers see all of the adopted run or none of it.

    The list must not change meanwhile: the items copied are those it held at the first step,
    and a list found shorter at a step, or of another length at the commit, is refused
    (errors.SourceChanged). A change that keeps its length goes unnoticed."""

    def __init__(
        self, queue: RunQueue, source: str, step: int = ADOPT_STEP, stage: bool = True
    ) -> None:
        if step <= 0 or step % layout.ITEMS_PER_FIELD:
            raise ValueError(f"step must be a multiple of {layout.ITEMS_PER_FIELD}")
        self.queue = queue
        self.source = source
        self.per_step = step
        self.stage = stage  # False: only read the list, for its digest
        self.staging = queue.keys.staging_items(secrets.token_hex(8))
        self.length: int | None = None  # of the list, at the first step
        self.copied = 0
        self.digest = digests.ItemsDigest()

    def step(self) -> bool:
        """Copy the next step; False once the whole list is copied."""
        if self.length is None:
            self.length = self.queue.seeding.list_length(self.source)
        want = min(self.per_step, self.length - self.copied)
        values = self.queue.seeding.list_range(self.source, self.copied, want) if want > 0 else []
        if len(values) < want:
            self.queue.seeding.drop_staging(self.staging)
            raise SourceChanged(
                f"list {self.source!r} shrank while it was being adopted (it held "
                f"{self.length} items, now {self.copied + len(values)}); adopt it again once "
                "nothing writes to it"
            )
        items = [encode(v) for v in values]
        fields = list(layout.chunk_fields(items, first=self.copied))
        for _, blob in fields:
            self.digest.add_field(blob)
        if self.stage:
            self.queue.seeding.stage_fields(self.staging, fields)
        self.copied += len(items)
        return self.copied < self.length

    def commit(self) -> SeedResult:
        if self.copied == 0:
            if self.queue.reading.is_seeded():  # by another seeder, meanwhile
                return already_seeded(self.queue, None)
            raise ConfigError(
                f"list {self.source!r} is empty or does not exist: nothing to adopt "
                f"(fill it first: redis-cli rpush {self.source} ITEM...)"
            )
        digest = self.digest.hexdigest()
        if self.queue.seeding.commit_seed(
            self.staging, self.copied, layout.KIND_LIST, 0, 1, digest, source=self.source
        ):
            return SeedResult(total=self.copied, seeded_now=True, digest=digest)
        return already_seeded(self.queue, digest)


def _commit(
    queue: RunQueue,
    staging: str,
    total: int,
    kind: str,
    start: int,
    step: int,
    digest: str,
    open_run: bool = False,
    chunk: int = layout.ITEMS_PER_FIELD,
) -> SeedResult:
    if queue.seeding.commit_seed(
        staging, total, kind, start, step, digest, open_run=open_run, chunk=chunk
    ):
        return SeedResult(total=total, seeded_now=True, digest=digest)
    return already_seeded(queue, digest)


def commit_staged(queue: RunQueue, staging: str, total: int, digest: str, chunk: int) -> SeedResult:
    """Commit items staged `chunk` to a field as the run's (a no-op if it is seeded already
    with the same items): the commit of a list run staged by another module (wq.seed.sharding)."""
    return _commit(queue, staging, total, layout.KIND_LIST, 0, 1, digest, chunk=chunk)


def already_seeded(queue: RunQueue, digest: str | None) -> SeedResult:
    """The run was seeded already: a no-op with the same items (digest; None: not known),
    a ConfigError with others. A run seeded before wq recorded digests matches anything."""
    stored = queue.reading.seed_state().digest
    if digest is not None and stored is not None and digest != stored:
        raise ConfigError(
            f"run {queue.run} was already seeded with different items (digest "
            f"{stored[:12]}..., these are {digest[:12]}...)"
        )
    return SeedResult(total=queue.reading.total(), seeded_now=False, digest=stored)
