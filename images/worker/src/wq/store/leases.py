"""A run's leases, for its workers: lease items, record them done (complete) or failed, and
keep leases alive (renew), hand them back (release) or reclaim expired ones (reap).

lease, complete and fail are the per-item hot path: each is one Lua call, retried whole.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import repeat
from typing import Any, NamedTuple, TypeVar

from wq.base.item import Item
from wq.base.status import is_drained
from wq.store import layout
from wq.store.completions import Completions, Finished, Results, record_ms
from wq.store.handle import MAX_BATCH, RunHandle

T = TypeVar("T")
# Item(position, attempt, raw, shown) from a tuple of the four, without NamedTuple's __new__
# in Python: a lease makes up to a thousand.
_item = tuple.__new__


def _shown(run_positions: Callable[[int], int] | None, position: str) -> int:
    """Item.shown of a returned item (`position` as the lease script answers it)."""
    return run_positions(int(position)) if run_positions else -1


@dataclass(frozen=True)
class LeaseReply:
    seeded: bool
    now_ms: int
    earliest_deadline_ms: int  # -1 when no item is leased
    pending: int
    in_flight: int
    items: list[Item]
    open: bool = False  # the run takes appends: drained or not, it is not finished
    seeder_ms: int = -1  # when the progressive seeder of an open run last added items
    stale: list[int] = field(default_factory=list)  # results given with the lease, refused

    @property
    def drained(self) -> bool:
        return is_drained(self.seeded, self.pending, self.in_flight, self.open)

    @property
    def expired_leases(self) -> bool:
        return 0 <= self.earliest_deadline_ms <= self.now_ms

    def seconds_to_next_deadline(self) -> float | None:
        if self.earliest_deadline_ms < 0:
            return None
        return max(0.0, (self.earliest_deadline_ms - self.now_ms) / 1000)


class FailOutcome(Enum):
    """What fail.lua did with a failed attempt."""

    RETRY = "retry"  # requeued: the item has attempts left
    DEAD = "dead"  # dead-lettered: that was its last attempt
    STALE = "stale"  # ignored: the token no longer held the item


# fail.lua's reply -> its outcome: a dict lookup, cheaper than FailOutcome(reply) per item.
_FAIL_OUTCOMES = {outcome.value: outcome for outcome in FailOutcome}


class Reaped(NamedTuple):
    """Expired leases reclaimed: their items requeued, or dead-lettered (a worker died running
    the item alone on its last attempt); `held_back`: there were some, but Redis restarted
    less than the grace ago, so none was reclaimed yet."""

    requeued: int
    dead: int
    held_back: bool = False


class Leases(RunHandle):
    """The workers' calls: the hot path (lease, complete, fail), then lease upkeep."""

    # On a shard of a sharded run: the run's position of a shard's own (Item.shown), which
    # the worker sets (wq.work.worker) for the items it leases there.
    run_positions: Callable[[int], int] | None = None

    def lease(
        self, count: int, lease_s: float, token: str, results: Results | None = None
    ) -> LeaseReply:
        """Lease up to `count` items as one batch under `token`; with `results`, record them
        first, in the same call (its reply's `stale`: those refused)."""
        k = self.keys
        keys = [k.meta, k.items, k.requeue, k.suspects, k.leases, k.batches, k.attempts]
        keys += [k.ledger, k.outputs, k.workers, k.durations]
        args: list[Any] = [min(count, MAX_BATCH), int(lease_s * 1000), token]
        stale: list[int] = []
        if results is not None:
            *before, last = results.done.calls()
            for part in before:
                stale += self.complete(results.token, results.worker, part)
            args += [results.token, *last.args(results.worker)]
        raw: list[Any] = self._eval(self.scripts.lease, keys=keys, args=args)
        first, fresh, offset, refused, returned = (int(v) for v in raw[9:14])
        at = 14
        stale += (int(p) for p in raw[at : at + refused])
        at += refused
        back = raw[at : at + 3 * returned]
        at += 3 * returned
        # Item.shown of each fresh item: its run position on a shard, else -1 (the same).
        shown = self.run_positions
        fresh_shown = map(shown, range(first, first + fresh)) if shown else repeat(-1)
        if raw[5] != "":  # a range run: its items are computed here, in exact integers
            start, step = int(raw[5]), int(raw[6])
            items = [
                Item(int(p), int(a), layout.range_item(start, step, int(p)), _shown(shown, p))
                for p, a in zip(back[::3], back[1::3], strict=True)
            ]
            # layout.range_item for each, in one pass (STEP is never 0: ItemRange refuses it).
            values = map(str, range(start + first * step, start + (first + fresh) * step, step))
            fresh_items = zip(range(first, first + fresh), repeat(1), values, fresh_shown)
            items += map(_item, repeat(Item, fresh), fresh_items)
        else:
            items = [
                Item(int(p), int(a), text, _shown(shown, p))
                for p, a, text in zip(back[::3], back[1::3], back[2::3], strict=True)
            ]
            if fresh:
                texts = layout.SEPARATOR.join(raw[at:]).split(layout.SEPARATOR)
                listed = zip(range(first, first + fresh), repeat(1), texts[offset:], fresh_shown)
                items += map(_item, repeat(Item, fresh), listed)
        return LeaseReply(
            seeded=bool(raw[0]),
            now_ms=int(raw[1]),
            earliest_deadline_ms=int(raw[2]),
            pending=int(raw[3]),
            in_flight=int(raw[4]),
            items=items,
            open=bool(int(raw[7])),
            seeder_ms=int(raw[8]),
            stale=stale,
        )

    def complete(
        self, token: str, worker: str, done: Completions | Sequence[Finished | int]
    ) -> list[int]:
        """Record items as done, each with its ledger record and output (a bare position: no
        duration known, no output); returns the positions the token had lost (nothing of them
        is recorded)."""
        k = self.keys
        keys = [k.meta, k.leases, k.batches, k.ledger, k.outputs, k.attempts, k.workers]
        keys.append(k.durations)
        batch = done if isinstance(done, Completions) else Completions.of(done)
        stale: list[int] = []
        for part in batch.calls():
            args = [token, *part.args(worker)]
            result: list[str] = self._eval(self.scripts.complete, keys=keys, args=args)
            stale.extend(int(p) for p in result)
        return stale

    def fail(
        self,
        token: str,
        position: int,
        error: str,
        max_attempts: int,
        worker: str = "",
        duration_ms: int = layout.UNKNOWN_MS,
    ) -> FailOutcome:
        """Retry the item, or dead-letter it once it has used up its attempts; stale if the token
        lost it. A dead item's ledger record names the worker (if given) and how long its last
        attempt took."""
        k = self.keys
        keys = [
            k.meta,
            k.requeue,
            k.leases,
            k.attempts,
            k.dead,
            k.errors,
            k.batches,
            k.ledger,
            k.workers,
            k.durations,
        ]
        result: str = self._eval(
            self.scripts.fail,
            keys=keys,
            args=[token, position, error, max_attempts, worker, record_ms(duration_ms)],
        )
        return _FAIL_OUTCOMES[result]

    # Lease upkeep.

    def renew(self, tokens: Sequence[str], lease_s: float) -> list[str]:
        """Push the deadlines of these tokens' leases; returns the tokens whose leases were
        lost (every position of those is lost)."""
        lost: list[str] = []
        for chunk in _chunks(tokens):
            result: list[str] = self._eval(
                self.scripts.renew, keys=[self.keys.leases], args=[int(lease_s * 1000), *chunk]
            )
            lost += result
        return lost

    def release(self, token: str, positions: Sequence[int]) -> int:
        """Hand items back without using an attempt; returns how many were still held."""
        k = self.keys
        released = 0
        for chunk in _chunks(positions):
            n: int = self._eval(
                self.scripts.release,
                keys=[k.meta, k.requeue, k.leases, k.batches, k.ledger],
                args=[token, *chunk],
            )
            released += int(n)
        return released

    def reap(self, max_attempts: int, limit: int = MAX_BATCH, grace_s: float = 0) -> Reaped:
        """Reclaim up to `limit` expired leases; none while Redis has been up less than
        `grace_s` (a restart counts as a renewal of every lease: workers pass their lease
        length, so that one cut off by the restart renews its leases first)."""
        k = self.keys
        keys = [
            k.meta,
            k.suspects,
            k.leases,
            k.attempts,
            k.dead,
            k.errors,
            k.batches,
            k.deaths,
            k.ledger,
        ]
        args = [max_attempts, limit, int(grace_s * 1000)]
        result: list[int] = self._eval(self.scripts.reap, keys=keys, args=args)
        return Reaped(requeued=int(result[0]), dead=int(result[1]), held_back=len(result) > 2)

    def reap_all(self, max_attempts: int) -> Reaped:
        """Reclaim every expired lease, in bounded calls (of every shard of a sharded run)."""
        runs = self.shard_runs()
        if runs:
            steps = [self.shard(run).reap_all(max_attempts) for run in runs]
            return Reaped(sum(s.requeued for s in steps), sum(s.dead for s in steps))
        requeued = dead = 0
        while True:
            step = self.reap(max_attempts)
            requeued, dead = requeued + step.requeued, dead + step.dead
            if step.requeued + step.dead == 0:
                return Reaped(requeued=requeued, dead=dead)


def _chunks(values: Sequence[T]) -> list[Sequence[T]]:
    return [values[i : i + MAX_BATCH] for i in range(0, len(values), MAX_BATCH)]
