"""One work item as a handler sees it."""

import json
from typing import Any, NamedTuple


class Item(NamedTuple):
    """A NamedTuple, not a dataclass: the worker makes one per item on its hot path."""

    position: int  # its place in the seed: the item's identity (duplicates are separate items)
    attempt: int  # 1 on the first lease
    raw: str  # the item as JSON text, as stored
    # The run's position of a sharded run's item, whose `position` is its shard's own
    # (wq.store.shard_layout); -1: the same as `position`.
    shown: int = -1

    @property
    def run_position(self) -> int:
        """Its place in the run's seed, as a user knows it (WQ_ITEM_POSITION, logs, report)."""
        return self.position if self.shown < 0 else self.shown

    @property
    def value(self) -> Any:
        """The decoded item: a str for plain items, else whatever JSON/YAML value was seeded."""
        return json.loads(self.raw)

    @property
    def text(self) -> str:
        """How the item is shown and passed on: strings as they are, other values as JSON."""
        if self.raw.startswith('"'):
            return str(json.loads(self.raw))
        return self.raw


# Items are stored as compact JSON text, non-ASCII kept as is. (The bound method of one
# encoder, as seeding calls it a million times.)
encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
