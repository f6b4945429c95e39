"""Where a worker runs its items: one inline slot (in the main thread, where SIGALRM can end an
in-process handler that overruns its timeout) or a pool of threads (--concurrency)."""

import queue as stdqueue
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Protocol

from wq.base.item import Item
from wq.work.handlers import Handler
from wq.work.outcome import Ended, Outcome, Ran


class StopRequested(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT while a handler runs inline.

    A BaseException, so a handler's `except Exception` cannot swallow the shutdown."""


class ItemTimeout(BaseException):
    """Raised in the main thread by SIGALRM when an inline handler overruns its timeout."""


class Slots(Protocol):
    def free(self) -> int: ...

    def busy(self) -> int: ...

    def submit(self, token: str, item: Item) -> None: ...

    def submit_many(self, token: str, items: Sequence[Item]) -> int:
        """submit() each, in order (as many as free() said); returns how many were taken (the
        rest go back to be handed out again)."""

    def results(self, timeout: float) -> list[Ended]: ...

    def interrupt(self) -> None:
        """Called from a signal handler: stop an item running in this (the main) thread."""

    def close(self) -> None:
        """The run is over: let go of what runs the items."""


def run_item(handler: Handler, token: str, item: Item) -> Outcome:
    started = time.monotonic_ns()
    try:
        output = handler(item)
    except Exception as exc:
        error = str(exc) or type(exc).__name__
        return Outcome(token, item, error, time.monotonic_ns() - started)
    return Outcome(token, item, None, time.monotonic_ns() - started, output)


def _close_run(done: list[Ended], token: str, items: list[Item], durations: list[int]) -> None:
    """The run of successes so far as one Ran (a stop may have come between the two appends
    of its last item: that item is then left out, and handed back)."""
    if items:
        n = min(len(items), len(durations))
        done.append(Ran(token, items[:n], durations[:n]))
        items.clear()
        durations.clear()


class InlineSlots:
    """One slot, run in the main thread: no hand-off cost per item, and SIGALRM can enforce
    the item timeout of an in-process handler."""

    def __init__(self, handler: Handler, timeout_s: float, slow_s: float = 0.0) -> None:
        self.handler = handler
        self.slow_ns = int(slow_s * 1e9)
        self.alarm_s = 0.0 if handler.enforces_own_timeout else timeout_s
        self.in_handler = False
        self._done: list[Ended] = []
        self.last_ns = 0  # how long the last item run under the alarm took
        # Items run per hand-out: one, so that each is recorded before the next starts, unless
        # the worker finds its items fast (then about --record-at-once of them: each loop of
        # the worker costs microseconds an item would pay otherwise).
        self.burst = 1

    def free(self) -> int:
        return self.burst

    def busy(self) -> int:
        return 0

    def submit(self, token: str, item: Item) -> None:
        if self.alarm_s <= 0:
            self.submit_many(token, [item])
            return
        started = time.monotonic_ns()
        try:
            with self._alarm():
                self.in_handler = True
                outcome = run_item(self.handler, token, item)
                self.in_handler = False
        except ItemTimeout:
            self.in_handler = False
            outcome = Outcome(
                token, item, f"timed out after {self.alarm_s:g}s", time.monotonic_ns() - started
            )
        self.last_ns = outcome.duration_ns
        self._done.append(outcome)

    def submit_many(self, token: str, items: Sequence[Item]) -> int:
        """Runs them in turn, but stops after one that took --record-at-once or more: it is
        recorded before the next starts. Without an alarm to set, successes with no output
        are handed back as runs (Ran), not an Outcome each."""
        if self.alarm_s > 0:
            for taken, item in enumerate(items, start=1):
                self.submit(token, item)
                if self.last_ns >= self.slow_ns:
                    return taken
            return len(items)
        handler, slow_ns, clock, done = self.handler, self.slow_ns, time.monotonic_ns, self._done
        ran: list[Item] = []
        durations: list[int] = []
        try:
            # Each item's start is the end of the one before: one clock read an item.
            started = clock()
            for taken, item in enumerate(items, start=1):
                self.in_handler = True
                try:
                    output = handler(item)
                except Exception as exc:
                    self.in_handler = False
                    ended = clock()
                    _close_run(done, token, ran, durations)
                    done.append(
                        Outcome(token, item, str(exc) or type(exc).__name__, ended - started)
                    )
                else:
                    self.in_handler = False
                    ended = clock()
                    if output is None:
                        ran.append(item)
                        durations.append(ended - started)
                    else:
                        _close_run(done, token, ran, durations)
                        done.append(Outcome(token, item, None, ended - started, output))
                if ended - started >= slow_ns:
                    return taken
                started = ended
            return len(items)
        finally:
            self.in_handler = False
            _close_run(done, token, ran, durations)

    @contextmanager
    def _alarm(self) -> Iterator[None]:
        def expire(signum: int, frame: FrameType | None) -> None:
            if self.in_handler:
                raise ItemTimeout()

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, self.alarm_s)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def results(self, timeout: float) -> list[Ended]:
        done, self._done = self._done, []
        return done

    def interrupt(self) -> None:
        if self.in_handler:
            self.in_handler = False
            raise StopRequested()

    def close(self) -> None:
        # Nothing runs now: a handler that holds output back (demo) writes it.
        self.handler.cancel_all()


class ThreadSlots:
    """`concurrency` handler slots on daemon threads (daemon: a shutdown need not wait for a
    handler that ignores it; its lease is released and its late result rejected)."""

    def __init__(self, handler: Handler, concurrency: int) -> None:
        self.handler = handler
        self.concurrency = concurrency
        self._tasks: stdqueue.SimpleQueue[tuple[str, Item]] = stdqueue.SimpleQueue()
        self._results: stdqueue.SimpleQueue[Outcome] = stdqueue.SimpleQueue()
        self._busy = 0
        for n in range(concurrency):
            threading.Thread(target=self._serve, name=f"slot-{n}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            token, item = self._tasks.get()
            self._results.put(run_item(self.handler, token, item))

    def free(self) -> int:
        return self.concurrency - self._busy

    def busy(self) -> int:
        return self._busy

    def submit(self, token: str, item: Item) -> None:
        self._busy += 1
        self._tasks.put((token, item))

    def submit_many(self, token: str, items: Sequence[Item]) -> int:
        for item in items:
            self.submit(token, item)
        return len(items)

    def results(self, timeout: float) -> list[Ended]:
        out: list[Ended] = []
        try:
            out.append(
                self._results.get(timeout=timeout) if timeout > 0 else self._results.get_nowait()
            )
            while True:
                out.append(self._results.get_nowait())
        except stdqueue.Empty:
            pass
        self._busy -= len(out)
        return out

    def interrupt(self) -> None:
        pass  # slot threads are daemons: the shutdown does not wait for them

    def close(self) -> None:
        # The run is over (or stopped, its items cancelled): a handler that holds output back
        # (demo) writes it.
        self.handler.cancel_all()
