"""What a worker records of its attempts: successes gathered per lease token and recorded in
one call per batch (at once for items slower than --record-at-once, so a killed worker leaves
little to run again), failures recorded one by one; and the counts its summary reports."""

import time
from collections import defaultdict
from operator import itemgetter

from wq.base.logs import EventLog
from wq.base.options import WorkerConfig
from wq.store.completions import Completions, Results
from wq.store.handle import MAX_BATCH, OUTPUT_BYTES_PER_CALL
from wq.store.leases import FailOutcome
from wq.store.queue import RunQueue
from wq.work.held import Held, brief
from wq.work.outcome import Ended, Outcome, Ran, moving_average

# An Item's position and attempt, in C loops over a Ran's items.
_position, _attempt = itemgetter(0), itemgetter(1)
MS_NS = 1_000_000


class Recorder:
    def __init__(
        self, queue: RunQueue, held: Held, config: WorkerConfig, worker_id: str, log: EventLog
    ) -> None:
        self.queue = queue
        self.held = held
        self.config = config
        self.worker_id = worker_id
        self.log = log
        self.finished: dict[str, Completions] = defaultdict(Completions.empty)
        self.unflushed = 0
        self.unflushed_output = 0  # characters of outputs waiting to be recorded
        self.slow_ns = int(config.record_at_once_s * 1e9)
        self.slow_unflushed = False  # an item waiting to be recorded took --record-at-once
        self.last_flush = time.monotonic()
        self.item_seconds: float | None = None  # moving average of handler time per item
        self.processed = 0
        self.failed = 0
        self.attempts = 0  # finished by the handler, done or failed
        self.busy_ns = 0  # handler time of those attempts

    def record_all(self, outcomes: list[Ended]) -> None:
        """Successes appended straight to their batch's lists, in one pass (keeping the
        outcomes until the flush cost the worker more CPU per item, measured in make bench);
        failures recorded one by one, at once."""
        token, done = "", Completions.empty()
        count = busy = 0
        debug = self.log.enabled("debug")
        for outcome in outcomes:
            if isinstance(outcome, Ran):
                if outcome.token != token:
                    token = outcome.token
                    done = self.finished[token]
                count += self._ran(outcome, done, debug)
                busy += sum(outcome.durations_ns)
                continue
            if outcome.error is not None:
                self._failed(outcome)
                continue
            if outcome.token != token:
                token = outcome.token
                done = self.finished[token]
            item, duration_ns = outcome.item, outcome.duration_ns
            busy += duration_ns
            count += 1
            if duration_ns >= self.slow_ns:
                self.slow_unflushed = True
            done.positions.append(item.position)
            done.attempts.append(item.attempt)
            done.durations_ms.append(duration_ns // MS_NS)
            if outcome.output is not None:
                done.outputs[item.position] = outcome.output
                self.unflushed_output += len(outcome.output)
            if debug:
                self.log.debug("item.done", position=item.position, seconds=duration_ns / 1e9)
        if count:
            self.unflushed += count
            self._timed(count, busy)

    def _ran(self, ran: Ran, done: Completions, debug: bool) -> int:
        """A run of successes without output appended to `done`, with no loop per item
        in Python but for their durations when any took a millisecond or more."""
        items, durations = ran.items, ran.durations_ns
        done.positions += map(_position, items)
        done.attempts += map(_attempt, items)
        longest = max(durations)
        if longest < MS_NS:
            done.durations_ms += [0] * len(items)
        else:
            done.durations_ms += [d // MS_NS for d in durations]
        if longest >= self.slow_ns:
            self.slow_unflushed = True
        if debug:
            for item, d in zip(items, durations, strict=True):
                self.log.debug("item.done", position=item.position, seconds=d / 1e9)
        return len(items)

    def _timed(self, count: int, busy_ns: int) -> None:
        """Count attempts that took `busy_ns` in all, and move the average of an item's time."""
        self.attempts += count
        self.busy_ns += busy_ns
        self.item_seconds = moving_average(self.item_seconds, busy_ns / count / 1e9, count)

    def _failed(self, outcome: Outcome) -> None:
        assert outcome.error is not None
        self._timed(1, outcome.duration_ns)
        position = outcome.item.position
        self.held.remove(outcome.token, [position])
        verdict = self.queue.leases.fail(
            outcome.token,
            position,
            outcome.error,
            self.config.max_attempts,
            worker=self.worker_id,
            duration_ms=outcome.duration_ns // MS_NS,
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

    def flush_due(self) -> bool:
        if self.unflushed == 0:
            return False
        return (
            self.unflushed >= MAX_BATCH
            or self.unflushed_output >= OUTPUT_BYTES_PER_CALL
            or self.slow_unflushed
            or (self.item_seconds or 0.0) >= self.config.record_at_once_s
            or time.monotonic() - self.last_flush >= self.config.flush_interval_s
        )

    def flush(self) -> None:
        """Record every success gathered so far, one call per lease token."""
        for results in self._take():
            self.recorded(
                results, self.queue.leases.complete(results.token, results.worker, results.done)
            )

    def flush_but_one(self) -> Results | None:
        """Record the successes gathered so far but those of one token, the most numerous,
        which are returned for the next lease to record (Leases.lease, then `recorded`)."""
        taken = sorted(self._take(), key=lambda r: len(r.done))
        if not taken:
            return None
        for results in taken[:-1]:
            self.recorded(
                results, self.queue.leases.complete(results.token, results.worker, results.done)
            )
        return taken[-1]

    def recorded(self, results: Results, stale: list[int]) -> None:
        """Count what a call recorded; the rest was refused (the token had lost it)."""
        self.processed += len(results.done) - len(stale)
        if stale:
            self.log.warning("result.rejected", reason="lease lost", positions=brief(stale))

    def _take(self) -> list[Results]:
        self.last_flush = time.monotonic()
        if not self.finished:
            return []
        finished, self.finished = self.finished, defaultdict(Completions.empty)
        self.unflushed = self.unflushed_output = 0
        self.slow_unflushed = False
        taken = []
        for token, done in finished.items():
            # Forgotten before it is recorded, so the heartbeat never renews a finished item
            # and takes its missing lease for a lost one.
            self.held.remove(token, done.positions)
            taken.append(Results(token, self.worker_id, done))
        return taken
