"""What happened to every item of a run, read window by window in seed order: the records
`wq report` streams and the accounting `wq status --check` verifies.

Reading goes a window of positions per call (wq.store.reading.WINDOW), so neither Redis nor
the reader holds more than a window at a time, whatever the run's size. Pending and in-flight
items have no ledger record: a position leased when the read started is in flight, any other
pending.
"""

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from wq.base.errors import ConfigError
from wq.store import layout, shard_layout
from wq.store.queue import RunQueue
from wq.store.reading import WINDOW

PENDING, IN_FLIGHT, DONE, DEAD = "pending", "in_flight", "done", "dead"
STATES = (PENDING, IN_FLIGHT, DONE, DEAD)
# Positions named in the accounting's problems, at most (the counts say how many in all).
EXAMPLES = 10


class ItemRecord(NamedTuple):
    """A NamedTuple, not a dataclass: a report makes one per item of the run."""

    position: int
    state: str  # one of STATES
    attempts: int  # counted: failures, deaths of its worker, and the accepted attempt
    duration_ms: int | None  # of the accepted attempt (done) or the last one (dead)
    worker: str | None  # that finished it (done) or failed it for good (dead)
    finished_ms: int | None  # Redis time the result was recorded, ms since the epoch
    error: str | None  # the last error of a failed attempt, if any failed
    item: str  # JSON text, as seeded
    output: str | None  # JSON text; None: no output


def iter_records(
    queue: RunQueue,
    states: Collection[str] = STATES,
    window: int = WINDOW,
    where: Callable[[int, str], bool] | None = None,
) -> Iterator[ItemRecord]:
    """Every item's record in seed order, those in `states` only, and with `where`, those
    whose (position, item JSON text) it accepts: their outputs alone are read (a search)."""
    queue.reading.seed_state()  # refuses a run that another wq version laid out
    reads = _ShardReads()
    for part in parts(queue):
        yield from _records(part, states, window, where, reads)


class Part(NamedTuple):
    """Consecutive positions of a run, on the queue of the run (or shard) that holds them."""

    queue: RunQueue
    first: int  # that queue's own position of the first item
    end: int | None  # past its last; None: to the end of the queue's items, as they grow
    offset: int  # the run's position of the first item


def parts(queue: RunQueue) -> Iterator[Part]:
    """The run in parts of consecutive positions, in seed order. A sharded run's parts are its
    shards' pieces (wq.store.shard_layout), the roles on each shard made once; another run is
    one part."""
    directory = queue.directory()
    if not directory.runs:
        yield Part(queue, 0, None, 0)
        return
    shards = [queue.shard(run) for run in directory.runs]
    total = queue.reading.total()
    for piece in shard_layout.pieces(total, len(shards), directory.striped):
        yield Part(shards[piece.shard], piece.first, piece.first + piece.size, piece.offset)


def finish_times(queue: RunQueue) -> Iterator[list[int]]:
    """Reading.finish_times of every shard of the run (or of the run)."""
    runs = queue.shard_runs()
    for part in [queue.shard(run) for run in runs] if runs else [queue]:
        yield from part.reading.finish_times()


class _ShardReads:
    """What a walk over a run reads once per shard, not once per piece: worker names and the
    positions leased when it first reached the shard."""

    def __init__(self) -> None:
        self.read: dict[str, tuple[dict[int, str], set[int]]] = {}  # by run (shard) id

    def of(self, queue: RunQueue, leased: bool) -> tuple[dict[int, str], set[int]]:
        if queue.run not in self.read:
            positions = queue.reading.leased_positions() if leased else set()
            self.read[queue.run] = (queue.reading.worker_names(), positions)
        return self.read[queue.run]


def _window(part: Part, first: int, window: int) -> int:
    """Positions to read from `first` on: a window, or less at the end of the part."""
    return window if part.end is None else min(window, part.end - first)


def _records(
    part: Part,
    states: Collection[str],
    window: int,
    where: Callable[[int, str], bool] | None,
    reads: _ShardReads,
) -> Iterator[ItemRecord]:
    """iter_records of one part of a run."""
    queue, offset = part.queue, part.offset - part.first
    workers, leased = reads.of(queue, bool({PENDING, IN_FLIGHT} & set(states)))
    first = part.first
    while part.end is None or first < part.end:
        w = queue.reading.window(first, _window(part, first, window))
        if not w.seeded:
            raise ConfigError(f"run {queue.run!r} is not seeded: it has no items to report")
        chosen: list[ItemRecord] = []
        with_output: list[int] = []
        count = len(w.items) if part.end is None else min(len(w.items), part.end - first)
        for i, item in enumerate(w.items[:count]):
            p = first + i
            r = w.records[i]
            if r is None:
                state = IN_FLIGHT if p in leased else PENDING
            else:
                state = DONE if r.state == layout.DONE else DEAD
            if state not in states or (where is not None and not where(offset + p, item)):
                continue
            if r is not None and r.has_output:
                with_output.append(p)
            chosen.append(
                ItemRecord(
                    position=p,
                    state=state,
                    attempts=r.attempts if r is not None else w.attempts[i],
                    duration_ms=r.duration_ms if r is not None else None,
                    worker=workers.get(r.worker) if r is not None else None,
                    finished_ms=r.finished_ms if r is not None else None,
                    error=w.dead[i] if state == DEAD and w.dead[i] else w.errors[i],
                    item=item,
                    output=None,
                )
            )
        outputs = queue.reading.outputs(with_output)
        for record in chosen:
            yield record._replace(
                position=offset + record.position, output=outputs.get(record.position)
            )
        first += window
        if first >= w.total:
            return


@dataclass
class Accounting:
    """Where every position of a run is, from its ledger and dead-letter hash, against the
    run's counters."""

    total: int = 0
    done: int = 0
    dead: int = 0
    unfinished: int = 0  # pending or in flight
    problems: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Every position is done or dead, once, and the counters agree."""
        return not self.problems and self.unfinished == 0 and self.done + self.dead == self.total

    def summary(self) -> str:
        counted = f"{self.done} done + {self.dead} dead"
        if self.exact:
            return f"every position accounted for once: {counted} = {self.total} total"
        parts = [f"{counted} of {self.total} total"]
        if self.unfinished:
            parts.append(f"{self.unfinished} not finished (pending or in flight)")
        return "NOT accounted for: " + "; ".join(parts + self.problems)


def account(queue: RunQueue, window: int = WINDOW) -> Accounting:
    """Walk the whole run, window by window, checking that no position is in two states."""
    status = queue.reading.status()
    if not status.seeded:
        raise ConfigError(f"run {queue.run!r} is not seeded: nothing to account for")
    result = Accounting(total=status.total)
    doubled: list[str] = []
    reads = _ShardReads()
    for part in parts(queue):
        _account_part(part, window, result, doubled, reads)
    if doubled:
        shown = ", ".join(doubled[:EXAMPLES]) + (", ..." if len(doubled) > EXAMPLES else "")
        result.problems.append(f"{len(doubled)} position(s) in two states: {shown}")
    if status.done != result.done:
        result.problems.append(f"the done counter says {status.done}, the ledger {result.done}")
    if status.dead != result.dead:
        result.problems.append(
            f"the dead-letter hash holds {status.dead}, the ledger {result.dead}"
        )
    return result


def _account_part(
    part: Part, window: int, result: Accounting, doubled: list[str], reads: _ShardReads
) -> None:
    """account() of one part of a run."""
    queue, offset = part.queue, part.offset - part.first
    _, leased = reads.of(queue, leased=True)
    end = queue.reading.total() if part.end is None else part.end
    first = part.first
    while first < end:
        w = queue.reading.window(first, min(window, end - first))
        for i, r in enumerate(w.records[: end - first]):
            p = offset + first + i
            in_dead_list = w.dead[i] is not None
            if r is None:
                result.unfinished += 1
                if in_dead_list:
                    doubled.append(f"{p} (dead-letter entry, no dead record)")
            elif r.state == layout.DONE:
                result.done += 1
                if in_dead_list:
                    doubled.append(f"{p} (done and dead)")
                if p - offset in leased:
                    doubled.append(f"{p} (done and leased)")
            else:
                result.dead += 1
                if not in_dead_list:
                    doubled.append(f"{p} (dead record, not dead-lettered)")
                if p - offset in leased:
                    doubled.append(f"{p} (dead and leased)")
        first += window
