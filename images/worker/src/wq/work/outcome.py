"""What became of one attempt at an item, as the worker records it."""

from typing import NamedTuple

from wq.base.item import Item


class HandlerFailed(Exception):
    """An item failed; the message becomes the item's last error."""


class Outcome(NamedTuple):
    token: str
    item: Item
    error: str | None
    duration_ns: int  # monotonic: integers are cheap to turn into a record's milliseconds
    output: str | None = None  # JSON text
