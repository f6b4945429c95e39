"""How a worker goes over the shards of a sharded run (`wq seed --shards`): its home shard
first (from its id, so that workers start apart), then each other in turn until nothing is
pending there, then each until drained (an open run's shards in turn, a poll on each, until
each is sealed and drained: its appends go to every shard); and, whenever items a dead worker
held come back on a shard that no worker takes them from, that shard first, so that they wait
about a lease, as on a run that is not sharded, and not until some worker is done with its own
shard."""

import threading
import zlib
from collections.abc import Callable
from enum import Enum

from wq.base.logs import EventLog
from wq.store.queue import RunQueue


class Left(Enum):
    """Why the worker left a shard (Worker._loop)."""

    DRAINED = "drained"  # nothing pending, nothing in flight, sealed
    EMPTY = "empty"  # nothing pending (others may still hold items)
    FOR_ORPHANS = "orphans"  # another shard's returned items wait for a worker
    OPEN = "open"  # nothing pending, not sealed: appends may come to this shard or another


def home_first(runs: list[str], worker_id: str) -> list[str]:
    home = zlib.crc32(worker_id.encode()) % len(runs)
    return runs[home:] + runs[:home]


def walk(
    order: list[str], work_on: Callable[[str, bool], "int | Left"], watch: "OrphanWatch"
) -> int | None:
    """Calls work_on(shard, until_drained) shard after shard, as the module says; the exit
    code if the worker stops on the way, None once every shard is drained."""
    for until_drained in (False, True):
        todo = list(order)
        while todo:
            target = watch.take() or todo[0]
            watch.discard(target)
            left = work_on(target, until_drained)
            if isinstance(left, int):
                return left
            if left is not Left.FOR_ORPHANS and target in todo:
                todo.remove(target)
            if left is Left.OPEN:
                todo.append(target)  # looked at again after the others
    return None


class OrphanWatch:
    """Looked at by the worker's heartbeat, each beat: the shards other than the one worked
    have their expired leases reclaimed, and a shard whose returned items are still waiting
    one beat later, which no worker is taking from, is flagged for the worker to go to."""

    def __init__(
        self, shards: dict[str, RunQueue], max_attempts: int, lease_s: float, log: EventLog
    ) -> None:
        self.shards = shards
        self.max_attempts = max_attempts
        self.lease_s = lease_s
        self.log = log
        self._lock = threading.Lock()
        self._waiting: set[str] = set()  # returned items seen at the last beat
        self._orphaned: set[str] = set()

    def look(self, current: str) -> None:
        for run, shard in self.shards.items():
            if run == current:
                continue  # the worker's own leases reclaim it
            reaped = shard.leases.reap(self.max_attempts, grace_s=self.lease_s)
            if reaped.requeued or reaped.dead:
                self.log.info("leases.reaped", shard=run, requeued=reaped.requeued)
            waiting = shard.reading.returned() > 0
            with self._lock:
                if waiting and run in self._waiting and run not in self._orphaned:
                    self._orphaned.add(run)
                    self.log.info("shard.orphaned", shard=run)
                if waiting:
                    self._waiting.add(run)
                else:
                    self._waiting.discard(run)
                    self._orphaned.discard(run)

    def pending(self, current: str) -> bool:
        """Whether a shard other than `current` waits for this worker to come."""
        with self._lock:
            return bool(self._orphaned - {current})

    def take(self) -> str | None:
        with self._lock:
            return self._orphaned.pop() if self._orphaned else None

    def discard(self, run: str) -> None:
        with self._lock:
            self._orphaned.discard(run)
