"""What a run's items are, as one digest fixed at seeding (the meta hash's `digest`,
wq.store.layout): equal digests mean the same items in the same order, whichever way they
were seeded."""

import hashlib
from collections.abc import Sequence

from wq.store import layout


class ItemsDigest:
    """The digest of a list run's items: sha256 over each item's stored JSON text followed by
    "\\n", in seed order, as hex. Fed field by field of the items hash (layout.chunk_fields), in
    order; an adopted list's values count as their JSON encoding, as in a list run."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()

    def add_field(self, blob: str) -> None:
        """Add the items of one field of the items hash (chunk_fields' joined text)."""
        self._sha.update(blob.encode())
        self._sha.update(b"\n")

    def hexdigest(self) -> str:
        """The digest of the items added so far (more may be added after)."""
        return self._sha.hexdigest()


def list_digest(items: Sequence[str]) -> str:
    """ItemsDigest of JSON-encoded items."""
    digest = ItemsDigest()
    for _, blob in layout.chunk_fields(items):
        digest.add_field(blob)
    return digest.hexdigest()


def range_digest(start: int, step: int, count: int) -> str:
    """The digest of a range run: sha256 of the text "range START STOP STEP", as hex, where
    STOP is start + count * step, just past the last item (not the END given, so that 0:10:3
    and 0:12:3, the same items, have the same digest, and the meta hash alone gives it)."""
    return hashlib.sha256(f"range {start} {start + count * step} {step}".encode()).hexdigest()
