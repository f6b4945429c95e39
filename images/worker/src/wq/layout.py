"""How a run's data is laid out inside its keys (key names are in wq.keys).

The Lua scripts in wq/lua follow this layout too; their headers point here. Change it in
both places or not at all.

meta hash (keys.RunKeys.meta), fields:
  total, cursor          items in the run; next position never leased yet
  seeded                 Redis time (ms) of the seeding commit; absent: not seeded
  kind                   'list' (items stored) or 'range' (items computed)
  range_start, range_step  a range run's item at position p is range_start + p * range_step
  chunk                  items per field of the items hash (ITEMS_PER_FIELD at seeding)
  digest                 what the run's items are, fixed at seeding (ItemsDigest, range_digest);
                         absent in runs seeded before wq recorded it
  retried, released, executions, stale, first_lease_ms   counters and the first lease time

items hash (keys.RunKeys.items): field p // chunk holds `chunk` items as JSON text joined by
"\\n" (JSON text never holds a raw newline); one field per item would make seeding a million
items several times slower.
"""

import hashlib
from collections.abc import Iterator, Sequence

ITEMS_PER_FIELD = 32
SEPARATOR = "\n"

# Fields of the meta hash.
TOTAL = "total"
CURSOR = "cursor"
SEEDED = "seeded"
KIND = "kind"
RANGE_START = "range_start"
RANGE_STEP = "range_step"
CHUNK = "chunk"
DIGEST = "digest"
RETRIED = "retried"
RELEASED = "released"
EXECUTIONS = "executions"
STALE = "stale"
FIRST_LEASE_MS = "first_lease_ms"

KIND_LIST = "list"
KIND_RANGE = "range"


def chunk_fields(
    items: Sequence[str], chunk: int = ITEMS_PER_FIELD, first: int = 0
) -> Iterator[tuple[int, str]]:
    """(field, joined items) of the items hash for items in seed order, items[0] being at
    position `first` (a multiple of `chunk`)."""
    for start in range(0, len(items), chunk):
        yield (first + start) // chunk, SEPARATOR.join(items[start : start + chunk])


def split_chunk(blob: str) -> list[str]:
    """The items of one field of the items hash."""
    return blob.split(SEPARATOR)


def field_of(position: int, chunk: int) -> tuple[int, int]:
    """(field, index within the field) of a list run's position."""
    return divmod(position, chunk)


def range_item(start: int, step: int, position: int) -> str:
    """A range run's item at `position`, as JSON text."""
    return str(start + position * step)


class ItemsDigest:
    """The digest of a list run's items: sha256 over each item's stored JSON text followed by
    "\\n", in seed order, as hex. Fed field by field of the items hash (chunk_fields), in
    order; an adopted list's values count as their JSON encoding, as in a list run."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()

    def add_field(self, blob: str) -> None:
        """Add the items of one field of the items hash (chunk_fields' joined text)."""
        self._sha.update(blob.encode())
        self._sha.update(b"\n")

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def list_digest(items: Sequence[str]) -> str:
    """ItemsDigest of JSON-encoded items."""
    digest = ItemsDigest()
    for _, blob in chunk_fields(items):
        digest.add_field(blob)
    return digest.hexdigest()


def range_digest(start: int, step: int, count: int) -> str:
    """The digest of a range run: sha256 of the text "range START STOP STEP", as hex, where
    STOP is start + count * step, just past the last item (not the END given, so that 0:10:3
    and 0:12:3, the same items, have the same digest, and the meta hash alone gives it)."""
    return hashlib.sha256(f"range {start} {start + count * step} {step}".encode()).hexdigest()
