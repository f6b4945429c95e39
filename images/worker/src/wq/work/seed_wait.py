"""A worker's waits on the seeder: for the run to be seeded at all, and for an open run's
progressive seeder to go on adding items (`--seed-wait` bounds both)."""

import threading
import time

from wq.base.errors import SeedTimeout
from wq.base.logs import EventLog
from wq.base.options import WorkerConfig
from wq.store.queue import RunQueue
from wq.work.slots import StopRequested


def wait_seeded(queue: RunQueue, seed_wait_s: float, stop: threading.Event, log: EventLog) -> None:
    """Returns once the run is seeded; SeedTimeout after `seed_wait_s`, StopRequested when
    `stop` is set meanwhile."""
    started = time.monotonic()
    next_note = 0.0
    while not queue.reading.is_seeded():
        waited = time.monotonic() - started
        if waited >= seed_wait_s:
            raise SeedTimeout(
                f"run {queue.run!r} was not seeded within {seed_wait_s:g}s; "
                "is the seeding Job (or `wq seed`) running against the same Redis and run id?"
            )
        if waited >= next_note:
            log.info("seed.waiting", waited_s=round(waited))
            next_note += 10
        if stop.wait(0.5):
            raise StopRequested()


def check_seeder(run: str, now_ms: int, seeder_ms: int, config: WorkerConfig) -> None:
    """A drained open run whose progressive seeder (`wq seed --progressive`) has added
    nothing for --seed-wait seconds will not be sealed by it: fail rather than wait for
    ever. An open run without one (`wq seed --open`) is waited on: its appender decides."""
    silent_s = (now_ms - seeder_ms) / 1000
    if seeder_ms >= 0 and silent_s > config.seed_wait_s:
        raise SeedTimeout(
            f"run {run!r} is open and drained, and its seeder last added items "
            f"{silent_s:.0f}s ago (--seed-wait {config.seed_wait_s:g}s): it stopped "
            "without sealing the run. See the seeding Job's logs; `wq seal --run "
            f"{run}` finishes the run with the items it has"
        )
