"""Items a worker leased and has not started yet: handed to its slots as they have room, a
slice of a batch at a time, each slice checked against its lease first."""

import time
from collections import deque

from wq.base.item import Item
from wq.base.logs import EventLog
from wq.store.queue import RunQueue
from wq.work.held import Held
from wq.work.slots import InlineSlots, Slots

# Most items an inline slot runs at once (fast ones; see Backlog.inline_burst).
MAX_INLINE_BURST = 256


class Leased:
    """A batch's items not handed to the slots yet: handed out from `next` on, in slices."""

    def __init__(self, token: str, items: list[Item]) -> None:
        self.token = token
        self.items = items
        self.next = 0

    def take(self, n: int) -> list[Item]:
        start, self.next = self.next, min(self.next + n, len(self.items))
        return self.items[start : self.next]

    def empty(self) -> bool:
        return self.next >= len(self.items)


class Backlog:
    """The leased batches not handed out yet, in lease order; true while it holds any."""

    def __init__(
        self, queue: RunQueue, slots: Slots, held: Held, record_at_once_s: float, log: EventLog
    ) -> None:
        self.queue = queue
        self.slots = slots
        self.held = held
        self.record_at_once_s = record_at_once_s
        self.log = log
        self.batches: deque[Leased] = deque()

    def __bool__(self) -> bool:
        return bool(self.batches)

    def add(self, token: str, items: list[Item]) -> None:
        self.batches.append(Leased(token, items))

    def hand_out(self, item_seconds: float | None) -> None:
        """Items to the slots, as many as they have room for now (inline: run here and now,
        one at a time unless they are fast), a batch's worth at a time; `item_seconds`: how
        long items have been taking."""
        if isinstance(self.slots, InlineSlots):
            self.slots.burst = self.inline_burst(item_seconds)
        free = self.slots.free()
        while free > 0 and self.batches:
            leased = self.batches[0]
            items = leased.take(free)
            free -= len(items)
            if leased.empty():
                self.batches.popleft()
            if self.held.lost or time.monotonic() >= self.held.good_until(leased.token):
                items = [i for i in items if self._still_held(leased.token, i)]
            if items and (taken := self.slots.submit_many(leased.token, items)) < len(items):
                self.batches.appendleft(Leased(leased.token, items[taken:]))
                return

    def inline_burst(self, item_seconds: float | None) -> int:
        """Items to run inline at once: about --record-at-once of work when items are faster
        than that (they are recorded in batches anyway), else one, recorded as it finishes."""
        at_once = self.record_at_once_s
        if item_seconds is None or item_seconds >= at_once:
            return 1
        return max(1, min(MAX_INLINE_BURST, int(at_once / max(item_seconds, 1e-7))))

    def _still_held(self, token: str, item: Item) -> bool:
        """Whether to start an item: not if its lease was found lost, nor if it could not be
        renewed in time (Redis out of reach); such an item is handed back, uncharged."""
        if self.held.lost and (token, item.position) in self.held.lost:
            self.held.lost.discard((token, item.position))
            self.log.debug("item.skipped", position=item.position, reason="lease lost")
            return False
        if time.monotonic() < self.held.good_until(token):
            return True
        self.held.remove(token, [item.position])
        self.queue.leases.release(token, [item.position])
        self.log.warning("item.skipped", position=item.position, reason="lease not renewed")
        return False
