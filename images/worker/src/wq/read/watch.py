"""A live progress view of a run, for `wq status --watch` and `wq run`."""

import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from wq.base.status import RunStatus
from wq.store.queue import RunQueue

QUIET_S = 30.0


class RateMeter:
    """Items finished per second over the last few samples (a recent rate, not a lifetime one)."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, finished: int, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        self.samples.append((now, finished))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window_s:
            self.samples.popleft()
        (t0, f0), (t1, f1) = self.samples[0], self.samples[-1]
        return (f1 - f0) / (t1 - t0) if t1 > t0 else None


def watch_status(
    queue: RunQueue,
    interval: float,
    stream: TextIO,
    keep_going: Callable[[RunStatus], bool] | None = None,
) -> RunStatus:
    """Print a progress line every `interval` seconds until the run is drained (or until
    keep_going says stop). On a terminal the line is redrawn in place; elsewhere (logs) a line
    is printed when the counts change, and at least every QUIET_S seconds."""
    meter = RateMeter()
    tty = stream.isatty()
    last_counts: tuple[int, ...] | None = None
    last_print = 0.0
    while True:
        current = queue.reading.status()
        rate = meter.add(current.done + current.dead)
        line = (
            current.progress_line(rate)
            if current.seeded
            else f"run {queue.run}: waiting for it to be seeded"
        )
        counts = (current.seeded, current.done, current.dead, current.pending, current.in_flight)
        finished = current.drained if keep_going is None else not keep_going(current)
        now = time.monotonic()
        if tty:
            stream.write(f"\r\033[K{line}")
        elif counts != last_counts or now - last_print >= QUIET_S or finished:
            stream.write(line + "\n")
            last_counts, last_print = counts, now
        stream.flush()
        if finished:
            if tty:
                stream.write("\n")
            return current
        time.sleep(interval)
