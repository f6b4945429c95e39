"""What became of attempts at items, as the worker records them: an Outcome each, or one Ran
for a run of items that succeeded with no output (a handler process answers most items so)."""

from collections.abc import Sequence
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


class Ran(NamedTuple):
    """Items of one lease token, in order, that each succeeded with no output: recorded
    without an Outcome each."""

    token: str
    items: Sequence[Item]
    durations_ns: Sequence[int]  # one each, in the same order


# What a worker's slots hand back.
Ended = Outcome | Ran


def moving_average(old: float | None, mean: float, count: int) -> float:
    """An item's time as a moving average, moved 0.2 of the way per item: here for `count`
    items of `mean` at once (None: no item yet)."""
    if old is None:
        return mean
    keep = 0.8**count
    return keep * old + (1 - keep) * mean


def attempts_in(ended: Sequence[Ended]) -> int:
    """Attempts in all."""
    return sum(len(e.items) if isinstance(e, Ran) else 1 for e in ended)
