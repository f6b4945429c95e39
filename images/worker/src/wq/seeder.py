"""Seeding a run: idempotent and atomic.

Items are staged in a hash private to this seeder (with an expiry, in case it dies), then one
Lua call renames it into place and sets the seeded marker. A retried seeder finds the marker
and does nothing; workers wait for the marker, so they never see a half-seeded run.
"""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from wq.items_source import ItemRange
from wq.queue import RunQueue

ITEMS_PER_FIELD = 32  # items joined into one field of the items hash (keys.RunKeys.items)
FIELDS_PER_HSET = 64
HSETS_PER_ROUND_TRIP = 16
STAGING_TTL_S = 3600


@dataclass(frozen=True)
class SeedResult:
    total: int
    seeded_now: bool  # False when the run had been seeded already (a retry)


def seed_items(queue: RunQueue, items: Sequence[str]) -> SeedResult:
    """Seed JSON-encoded items in order; a no-op if the run is already seeded."""
    if queue.is_seeded():
        return SeedResult(total=_total(queue), seeded_now=False)
    staging = queue.keys.staging_items(secrets.token_hex(8))
    if items:
        queue.call(lambda: _stage(queue, staging, items))
    return _commit(queue, staging, len(items), "list", 0, 1)


def seed_range(queue: RunQueue, item_range: ItemRange) -> SeedResult:
    """A range run stores no items: each worker computes item = start + position * step."""
    staging = queue.keys.staging_items("range")
    return _commit(queue, staging, len(item_range), "range", item_range.start, item_range.step)


def adopt_list(queue: RunQueue, source: str) -> SeedResult:
    """Turn a plain list filled by hand into this run (the Kubernetes docs' workflow)."""
    k = queue.keys
    n: int = queue.call(
        lambda: queue.scripts.adopt(keys=[k.meta, k.items, source], args=[ITEMS_PER_FIELD])
    )
    if int(n) < 0:
        return SeedResult(total=_total(queue), seeded_now=False)
    return SeedResult(total=int(n), seeded_now=True)


def _stage(queue: RunQueue, staging: str, items: Sequence[str]) -> None:
    client = queue.client
    client.delete(staging)  # a retry after an outage starts this seeder's staging afresh
    pipe = client.pipeline(transaction=False)
    per_hset = ITEMS_PER_FIELD * FIELDS_PER_HSET
    for n, start in enumerate(range(0, len(items), per_hset), start=1):
        args: list[str | int] = []
        for first in range(start, min(start + per_hset, len(items)), ITEMS_PER_FIELD):
            args += (first // ITEMS_PER_FIELD, "\n".join(items[first : first + ITEMS_PER_FIELD]))
        pipe.execute_command("HSET", staging, *args)  # type: ignore[no-untyped-call]
        if n % HSETS_PER_ROUND_TRIP == 0:
            pipe.expire(staging, STAGING_TTL_S)
            pipe.execute()
    pipe.expire(staging, STAGING_TTL_S)
    pipe.execute()


def _commit(
    queue: RunQueue, staging: str, total: int, kind: str, start: int, step: int
) -> SeedResult:
    k = queue.keys
    seeded: int = queue.call(
        lambda: queue.scripts.seed(
            keys=[k.meta, k.items, staging], args=[total, kind, start, step, ITEMS_PER_FIELD]
        )
    )
    if int(seeded) == 1:
        return SeedResult(total=total, seeded_now=True)
    return SeedResult(total=_total(queue), seeded_now=False)


def _total(queue: RunQueue) -> int:
    value = queue.call(lambda: queue.client.hget(queue.keys.meta, "total"))
    return int(value or 0)
