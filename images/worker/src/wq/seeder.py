"""Seeding a run: idempotent and atomic.

Items are staged in a hash private to this seeder (with an expiry, in case it dies), then one
Lua call renames it into place and sets the seeded marker. A retried seeder finds the marker
and does nothing; workers wait for the marker, so they never see a half-seeded run.
"""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from wq import layout
from wq.errors import ConfigError
from wq.item import encode
from wq.items_source import FORMATS, ItemRange, read_items_file
from wq.options import setting
from wq.queue import RunQueue


@dataclass(frozen=True)
class SeedResult:
    total: int
    seeded_now: bool  # False when the run had been seeded already (a retry)


@dataclass(frozen=True)
class ItemsSource:
    """Where `wq seed` and `wq run` take a run's items from: exactly one of these is given."""

    items: tuple[str, ...] = ()  # plain strings from the command line (ITEM...)
    items_file: Path | None = setting(
        None,
        "--items-file",
        "WQ_ITEMS_FILE",
        "Read items from a file: one per line, or a JSON/YAML list.",
        type=click.Path(path_type=Path, dir_okay=False),
    )
    items_format: str | None = setting(
        None,
        "--format",
        "WQ_ITEMS_FORMAT",
        "Format of --items-file (default: from the extension; .json, .yaml/.yml, else lines).",
        type=click.Choice(FORMATS),
    )
    item_range: str | None = setting(
        None,
        "--range",
        "WQ_ITEM_RANGE",
        "Items are the integers START:END[:STEP] (END excluded, as in Python's range); nothing "
        "is stored per item, so millions are cheap.",
    )
    adopt_list: str | None = setting(
        None,
        "--adopt-list",
        "WQ_ADOPT_LIST",
        "Adopt a plain Redis list filled by hand (rpush KEY a b c) as the items.",
    )

    def check(self) -> None:
        given = [
            name
            for name, value in (
                ("ITEMS", self.items),
                ("--items-file", self.items_file),
                ("--range", self.item_range),
                ("--adopt-list", self.adopt_list),
            )
            if value
        ]
        if len(given) != 1:
            raise ConfigError(
                "give items in exactly one way: ITEMS, --items-file, --range or --adopt-list"
                + (f" (got {' and '.join(given)})" if given else " (got none)")
            )


def seed_from(queue: RunQueue, source: ItemsSource) -> SeedResult:
    """Seed the run from whichever source was given."""
    source.check()
    if source.item_range:
        return seed_range(queue, ItemRange.parse(source.item_range))
    if source.adopt_list:
        return adopt_list(queue, source.adopt_list)
    if source.items_file:
        return seed_items(queue, read_items_file(source.items_file, source.items_format))
    return seed_items(queue, [encode(i) for i in source.items])


def seed_items(queue: RunQueue, items: Sequence[str]) -> SeedResult:
    """Seed JSON-encoded items in order; a no-op if the run is already seeded."""
    if queue.is_seeded():
        return SeedResult(total=queue.total(), seeded_now=False)
    staging = queue.keys.staging_items(secrets.token_hex(8))
    if items:
        queue.stage_items(staging, items)
    return _commit(queue, staging, len(items), layout.KIND_LIST, 0, 1)


def seed_range(queue: RunQueue, item_range: ItemRange) -> SeedResult:
    """A range run stores no items: each worker computes them (layout.range_item)."""
    staging = queue.keys.staging_items("range")
    return _commit(
        queue, staging, len(item_range), layout.KIND_RANGE, item_range.start, item_range.step
    )


def adopt_list(queue: RunQueue, source: str) -> SeedResult:
    """Turn a plain list filled by hand into this run (the Kubernetes docs' workflow)."""
    adopted = queue.adopt(source)
    if adopted is None:
        return SeedResult(total=queue.total(), seeded_now=False)
    return SeedResult(total=adopted, seeded_now=True)


def _commit(
    queue: RunQueue, staging: str, total: int, kind: str, start: int, step: int
) -> SeedResult:
    if queue.commit_seed(staging, total, kind, start, step):
        return SeedResult(total=total, seeded_now=True)
    return SeedResult(total=queue.total(), seeded_now=False)
