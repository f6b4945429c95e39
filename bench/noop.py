"""The benchmark's handler: does nothing, so what is measured is the queue's own overhead."""

from typing import Any


def noop(item: Any) -> None:
    pass
