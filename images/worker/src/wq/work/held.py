"""The leases a worker holds, and the heartbeat that keeps them: renewed each third of the
lease length while their items run, other workers' expired leases reclaimed as they expire."""

import threading
import time
from collections import defaultdict

from wq.base.logs import EventLog
from wq.base.options import WorkerConfig
from wq.store.queue import RunQueue
from wq.work.shard_walk import OrphanWatch


class Held:
    """The positions this worker holds leases for, by lease token, and until when each lease is
    known to be good (shared by the main loop and the heartbeat)."""

    def __init__(self) -> None:
        self._by_token: dict[str, set[int]] = defaultdict(set)
        self._good_until: dict[str, float] = {}  # monotonic time: lease start or renewal + lease
        self._lock = threading.Lock()
        # Positions whose lease the heartbeat found lost. Read without the lock on the hot
        # path: a stale read only delays a skip by one item.
        self.lost: set[tuple[str, int]] = set()

    def add(self, token: str, positions: list[int], good_until: float) -> None:
        with self._lock:
            self._by_token[token].update(positions)
            self._good_until[token] = good_until

    def remove(self, token: str, positions: list[int]) -> None:
        with self._lock:
            held = self._by_token.get(token)
            if held is None:
                return
            held.difference_update(positions)
            if not held:
                del self._by_token[token]
                self._good_until.pop(token, None)

    def renewed(self, token: str, good_until: float) -> None:
        with self._lock:
            if token in self._by_token:
                self._good_until[token] = good_until

    def mark_lost(self, token: str, positions: list[int]) -> list[int]:
        """Forget positions whose lease is gone; returns those that were still held (a
        position completed meanwhile was not lost)."""
        with self._lock:
            held = self._by_token.get(token, set())
            gone = [p for p in positions if p in held]
            self.lost.update((token, p) for p in gone)
        self.remove(token, gone)
        return gone

    def good_until(self, token: str) -> float:
        return self._good_until.get(token, 0.0)

    def snapshot(self) -> dict[str, list[int]]:
        with self._lock:
            return {t: sorted(p) for t, p in self._by_token.items()}


class Heartbeat(threading.Thread):
    """Renews every held lease each third of the lease length, so a lease outlives a slow
    item for as long as its worker is alive, whatever the item timeout; and reclaims other
    workers' expired leases as soon as they expire. It never dies of an error: it logs it and
    tries again, and the main loop stops starting items whose lease it could not renew."""

    def __init__(self, queue: RunQueue, held: Held, config: WorkerConfig, log: EventLog) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.queue = queue
        self.held = held
        self.lease_s = config.lease_s
        self.max_attempts = config.max_attempts
        self.log = log
        self.stopped = threading.Event()
        self.watch: OrphanWatch | None = None  # a sharded run's other shards

    def run(self) -> None:
        while not self.stopped.wait(self.lease_s / 3):
            try:
                self.beat()
            except Exception as exc:  # any error: log, and beat again
                self.log.warning("heartbeat.failed", error=str(exc) or type(exc).__name__)

    def beat(self) -> None:
        held = self.held.snapshot()
        if held:
            started = time.monotonic()
            lost = set(self.queue.leases.renew(list(held), self.lease_s))
            for token, positions in held.items():
                if token not in lost:
                    self.held.renewed(token, started + self.lease_s)
                elif gone := self.held.mark_lost(token, positions):
                    self.log.warning("lease.lost", positions=brief(gone))
        reaped = self.queue.leases.reap(self.max_attempts, grace_s=self.lease_s)
        if reaped.requeued or reaped.dead:
            self.log.info("leases.reaped", requeued=reaped.requeued, dead=reaped.dead)
        if self.watch is not None:
            self.watch.look(self.queue.run)


def brief(positions: list[int], limit: int = 20) -> str:
    shown = ",".join(str(p) for p in positions[:limit])
    return shown + (f",...(+{len(positions) - limit})" if len(positions) > limit else "")
