"""The worker: lease items in adaptive batches, run the handler, record results, and exit 0
only when the run is drained (nothing pending, nothing in flight anywhere) and sealed: on an
open run (wq.seed.open_runs) it waits, polling, for more items or the seal.

While other workers still hold leases it keeps polling and reaping, so an item whose worker
died is picked up by a survivor. SIGTERM releases every lease it holds at once, without using
up an attempt, and exits 143. Whichever way it ends (drained, dead items, lost, stopped), it
says what it did once (wq.work.summary).
"""

import os
import queue as stdqueue
import secrets
import signal
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NamedTuple, Protocol

from wq.base.errors import RunLost, SeedTimeout
from wq.base.item import Item
from wq.base.logs import EventLog
from wq.base.options import WorkerConfig
from wq.store.completions import Completions
from wq.store.handle import MAX_BATCH, OUTPUT_BYTES_PER_CALL
from wq.store.leases import FailOutcome
from wq.store.queue import RunQueue
from wq.work.handlers import Handler, build_handler
from wq.work.summary import WorkerSummary, write_termination_message

EXIT_DRAINED = 0
EXIT_DEAD_ITEMS = 3
EXIT_STOPPED = 128 + signal.SIGTERM


class StopRequested(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT while a handler runs inline.

    A BaseException, so a handler's `except Exception` cannot swallow the shutdown."""


class ItemTimeout(BaseException):
    """Raised in the main thread by SIGALRM when an inline handler overruns its timeout."""


class Outcome(NamedTuple):
    token: str
    item: Item
    error: str | None
    duration_ns: int  # monotonic: integers are cheap to turn into a record's milliseconds
    output: str | None = None  # JSON text


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


class Slots(Protocol):
    def free(self) -> int: ...

    def busy(self) -> int: ...

    def submit(self, token: str, item: Item) -> None: ...

    def results(self, timeout: float) -> list[Outcome]: ...

    def interrupt(self) -> None:
        """Called from a signal handler: stop an item running in this (the main) thread."""


def _run(handler: Handler, token: str, item: Item) -> Outcome:
    started = time.monotonic_ns()
    try:
        output = handler(item)
    except Exception as exc:
        error = str(exc) or type(exc).__name__
        return Outcome(token, item, error, time.monotonic_ns() - started)
    return Outcome(token, item, None, time.monotonic_ns() - started, output)


class InlineSlots:
    """One slot, run in the main thread: no hand-off cost per item, and SIGALRM can enforce
    the item timeout of an in-process handler."""

    def __init__(self, handler: Handler, timeout_s: float) -> None:
        self.handler = handler
        self.alarm_s = 0.0 if handler.enforces_own_timeout else timeout_s
        self.in_handler = False
        self._done: list[Outcome] = []

    def free(self) -> int:
        return 1

    def busy(self) -> int:
        return 0

    def submit(self, token: str, item: Item) -> None:
        if self.alarm_s <= 0:
            self.in_handler = True
            self._done.append(_run(self.handler, token, item))
            self.in_handler = False
            return
        started = time.monotonic_ns()
        try:
            with self._alarm():
                self.in_handler = True
                outcome = _run(self.handler, token, item)
                self.in_handler = False
        except ItemTimeout:
            self.in_handler = False
            outcome = Outcome(
                token, item, f"timed out after {self.alarm_s:g}s", time.monotonic_ns() - started
            )
        self._done.append(outcome)

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

    def results(self, timeout: float) -> list[Outcome]:
        done, self._done = self._done, []
        return done

    def interrupt(self) -> None:
        if self.in_handler:
            self.in_handler = False
            raise StopRequested()


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
            self._results.put(_run(self.handler, token, item))

    def free(self) -> int:
        return self.concurrency - self._busy

    def busy(self) -> int:
        return self._busy

    def submit(self, token: str, item: Item) -> None:
        self._busy += 1
        self._tasks.put((token, item))

    def results(self, timeout: float) -> list[Outcome]:
        out: list[Outcome] = []
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

    def run(self) -> None:
        while not self.stopped.wait(self.lease_s / 3):
            try:
                self.beat()
            except Exception as exc:  # any error: log, and beat again
                self.log.warning("heartbeat.failed", error=str(exc) or type(exc).__name__)

    def beat(self) -> None:
        for token, positions in self.held.snapshot().items():
            started = time.monotonic()
            lost = self.queue.leases.renew(token, self.lease_s, positions)
            self.held.renewed(token, started + self.lease_s)
            gone = self.held.mark_lost(token, lost) if lost else []
            if gone:
                self.log.warning("lease.lost", positions=_brief(gone))
        reaped = self.queue.leases.reap(self.max_attempts)
        if reaped.requeued or reaped.dead:
            self.log.info("leases.reaped", requeued=reaped.requeued, dead=reaped.dead)


class Worker:
    def __init__(
        self, queue: RunQueue, handler: Handler, config: WorkerConfig, log: EventLog
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.config = config
        self.worker_id = config.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.log = log.bind(run=queue.run, worker=self.worker_id)
        self.stop = threading.Event()
        self.held = Held()
        self.slots: Slots = (
            InlineSlots(handler, config.item_timeout_s)
            if config.concurrency == 1
            else ThreadSlots(handler, config.concurrency)
        )
        self.local: deque[tuple[str, Item]] = deque()
        self.finished: dict[str, Completions] = defaultdict(Completions.empty)
        self.unflushed = 0
        self.unflushed_output = 0  # characters of outputs waiting to be recorded
        self.last_flush = time.monotonic()
        self.item_seconds: float | None = None  # moving average of handler time per item
        self.processed = 0
        self.failed = 0
        self.attempts = 0  # finished by the handler, done or failed
        self.busy_ns = 0  # handler time of those attempts
        self.started = time.monotonic()

    # Signals.

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stop.is_set():
            self.log.info("stop.requested", signal=signal.Signals(signum).name)
        self.stop.set()
        self.slots.interrupt()

    # The run.

    def run(self) -> int:
        c = self.config
        self.log.info(
            "worker.start",
            lease_s=c.lease_s,
            concurrency=c.concurrency,
            max_attempts=c.max_attempts,
            item_timeout_s=c.item_timeout_s,
        )
        self.started = time.monotonic()
        heartbeat = Heartbeat(self.queue, self.held, c, self.log)
        try:
            self._wait_seeded()
            heartbeat.start()
            code = self._loop()
        except StopRequested:
            code = self._shutdown()
        except RunLost as exc:
            self._summarize("lost", exc.exit_code)
            raise
        finally:
            heartbeat.stopped.set()
        reasons = {EXIT_DRAINED: "drained", EXIT_DEAD_ITEMS: "dead_items", EXIT_STOPPED: "stopped"}
        self._summarize(reasons[code], code)
        return code

    def _summarize(self, reason: str, code: int) -> None:
        summary = WorkerSummary(
            worker=self.worker_id,
            run=self.queue.run,
            reason=reason,
            exit_code=code,
            processed=self.processed,
            failed=self.failed,
            attempts=self.attempts,
            busy_s=self.busy_ns / 1e9,
            seconds=time.monotonic() - self.started,
        )
        self.log.info("worker.summary", **summary.fields())
        write_termination_message(self.config.termination_log, summary.line())

    def _wait_seeded(self) -> None:
        started = time.monotonic()
        next_note = 0.0
        while not self.queue.reading.is_seeded():
            waited = time.monotonic() - started
            if waited >= self.config.seed_wait_s:
                raise SeedTimeout(
                    f"run {self.queue.run!r} was not seeded within {self.config.seed_wait_s:g}s; "
                    "is the seeding Job (or `wq seed`) running against the same Redis and run id?"
                )
            if waited >= next_note:
                self.log.info("seed.waiting", waited_s=round(waited))
                next_note += 10
            if self.stop.wait(0.5):
                raise StopRequested()

    def _check_seeder(self, now_ms: int, seeder_ms: int) -> None:
        """A drained open run whose progressive seeder (`wq seed --progressive`) has added
        nothing for --seed-wait seconds will not be sealed by it: fail rather than wait for
        ever. An open run without one (`wq seed --open`) is waited on: its appender decides."""
        silent_s = (now_ms - seeder_ms) / 1000
        if seeder_ms >= 0 and silent_s > self.config.seed_wait_s:
            raise SeedTimeout(
                f"run {self.queue.run!r} is open and drained, and its seeder last added items "
                f"{silent_s:.0f}s ago (--seed-wait {self.config.seed_wait_s:g}s): it stopped "
                "without sealing the run. See the seeding Job's logs; `wq seal --run "
                f"{self.queue.run}` finishes the run with the items it has"
            )

    def _loop(self) -> int:
        next_note = 0.0
        told_open = False  # the log says once per empty spell that an open run is waited on
        while True:
            if self.stop.is_set():
                return self._shutdown()
            if self.local and self.slots.free() > 0:
                token, item = self.local.popleft()
                if self._still_held(token, item):
                    self.slots.submit(token, item)
            wait = 0.0 if self.local or not self.slots.busy() else self.config.flush_interval_s
            for outcome in self.slots.results(wait):
                self._record(outcome)
            if self._flush_due():
                self._flush()
            if self.local or self.slots.free() == 0:
                continue

            self._flush()
            token = secrets.token_hex(8)
            leased_at = time.monotonic()
            reply = self.queue.leases.lease(self._batch_size(), self.config.lease_s, token)
            if not reply.seeded:
                self.log.error("run.lost", hint="the run was seeded and its keys are gone")
                raise RunLost(self.queue.run)
            if reply.expired_leases:
                reaped = self.queue.leases.reap(self.config.max_attempts)
                self.log.info("leases.reaped", requeued=reaped.requeued, dead=reaped.dead)
            if reply.items:
                told_open = False
                self.held.add(
                    token, [i.position for i in reply.items], leased_at + self.config.lease_s
                )
                self.local.extend((token, i) for i in reply.items)
                continue
            if reply.expired_leases:
                continue
            if self.slots.busy():
                continue
            if reply.drained:
                return self._finish()
            if reply.open and reply.pending == reply.in_flight == 0:
                self._check_seeder(reply.now_ms, reply.seeder_ms)
                if not told_open:
                    self.log.info(
                        "run.open", hint=f"waiting for items or `wq seal --run {self.queue.run}`"
                    )
                    told_open = True
            now = time.monotonic()
            if now >= next_note:
                self.log.info("waiting", pending=reply.pending, in_flight=reply.in_flight)
                next_note = now + 10
            until_deadline = reply.seconds_to_next_deadline()
            pause = (
                self.config.poll_s
                if until_deadline is None
                else min(self.config.poll_s, until_deadline + 0.01)
            )
            self.stop.wait(pause)

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

    def _batch_size(self) -> int:
        free = self.slots.free()
        if self.item_seconds is None:
            return free
        wanted = int(
            self.config.batch_target_s * self.config.concurrency / max(self.item_seconds, 1e-6)
        )
        return max(free, min(wanted, self.config.max_batch, MAX_BATCH))

    def _record(self, outcome: Outcome) -> None:
        self.attempts += 1
        self.busy_ns += outcome.duration_ns
        d = outcome.duration_ns / 1e9
        self.item_seconds = d if self.item_seconds is None else 0.8 * self.item_seconds + 0.2 * d
        item = outcome.item
        position = item.position
        if outcome.error is None:
            # Appended straight to the batch's lists: keeping the outcomes until the flush
            # cost the worker more CPU per item (measured in make bench).
            done = self.finished[outcome.token]
            done.positions.append(position)
            done.attempts.append(item.attempt)
            done.durations_ms.append(outcome.duration_ns // 1_000_000)
            self.unflushed += 1
            if outcome.output is not None:
                done.outputs[position] = outcome.output
                self.unflushed_output += len(outcome.output)
            if self.log.enabled("debug"):
                self.log.debug("item.done", position=position, seconds=d)
            return
        self.held.remove(outcome.token, [position])
        verdict = self.queue.leases.fail(
            outcome.token,
            position,
            outcome.error,
            self.config.max_attempts,
            worker=self.worker_id,
            duration_ms=outcome.duration_ns // 1_000_000,
        )
        self.failed += 1
        level = "error" if verdict is FailOutcome.DEAD else "warning"
        self.log.emit(
            level,
            "item.failed",
            {
                "position": position,
                "attempt": outcome.item.attempt,
                "outcome": verdict.value,
                "error": outcome.error,
            },
        )

    def _flush_due(self) -> bool:
        if self.unflushed == 0:
            return False
        return (
            self.unflushed >= MAX_BATCH
            or self.unflushed_output >= OUTPUT_BYTES_PER_CALL
            or (self.item_seconds or 0.0) >= self.config.record_at_once_s
            or time.monotonic() - self.last_flush >= self.config.flush_interval_s
        )

    def _flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.finished:
            return
        finished, self.finished = self.finished, defaultdict(Completions.empty)
        self.unflushed = self.unflushed_output = 0
        for token, done in finished.items():
            # Forgotten before it is recorded, so the heartbeat never renews a finished item
            # and takes its missing lease for a lost one.
            self.held.remove(token, done.positions)
            stale = self.queue.leases.complete(token, self.worker_id, done)
            self.processed += len(done) - len(stale)
            if stale:
                self.log.warning("result.rejected", reason="lease lost", positions=_brief(stale))

    def _finish(self) -> int:
        ttl = self.config.results_ttl_s
        expiring = ttl > 0 and self.queue.admin.expire_results(ttl)
        status = self.queue.reading.status()
        self.log.info(
            "worker.drained",
            processed=self.processed,
            failed=self.failed,
            done=status.done,
            dead=status.dead,
            total=status.total,
            **({"keys_expire_in_s": ttl} if expiring else {}),
        )
        if self.config.fail_on_dead and status.dead:
            self.log.error(
                "run.dead_items",
                dead=status.dead,
                hint=f"wq dead --run {self.queue.run}",
            )
            return EXIT_DEAD_ITEMS
        return EXIT_DRAINED

    def _shutdown(self) -> int:
        """Graceful stop: record what finished, hand back everything else at once."""
        self.handler.cancel_all()
        for outcome in self.slots.results(0):
            if outcome.error is None:  # failures now are our own cancellations
                self._record(outcome)
        self._flush()
        released = sum(
            self.queue.leases.release(token, positions)
            for token, positions in self.held.snapshot().items()
        )
        self.log.info("worker.stopped", processed=self.processed, released=released)
        return EXIT_STOPPED


def _brief(positions: list[int], limit: int = 20) -> str:
    shown = ",".join(str(p) for p in positions[:limit])
    return shown + (f",...(+{len(positions) - limit})" if len(positions) > limit else "")


def work(queue: RunQueue, config: WorkerConfig, log: EventLog) -> int:
    """`wq work`: a worker with the configured handler until the run is drained or SIGTERM;
    returns its exit code."""
    worker = Worker(queue, build_handler(config), config, log)
    worker.install_signal_handlers()
    return worker.run()
