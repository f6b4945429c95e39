"""`wq autoscale`: size a run's worker Job to its work, one step every --interval seconds.

A step reads the run's counts (queue.reading.status(): one O(1) call) and the Job, asks
wq.scale.policy what size the Job should have, patches the Job's parallelism when that
changes (with a log line and a Kubernetes Event on the Job saying why), and records the
decision beside the run for `wq status`. The controller holds nothing: if it dies, the Job
keeps its last parallelism and completes as it would without it, and a new controller starts
from what it reads.

Exits 0 once the run is drained, or the Job has finished or is gone; 4 if the run was lost;
1 when Redis stays out of reach past --redis-wait (as every command: an outage is never taken
for a drained run); 2 when the Job cannot be read at all for JOB_WAIT_S (a wrong name or
namespace, no permission). Other Kubernetes API failures are logged and tried again.

The Kubernetes API is behind JobControl, three calls that wq.scale.kube makes for real; tests drive
the loop with a real Redis and a JobControl of their own.
"""

import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import NamedTuple, Protocol

from wq.base.command_options import AutoscaleOptions
from wq.base.errors import ConfigError, KubernetesUnavailable, RunLost
from wq.base.logs import EventLog
from wq.base.status import RunStatus
from wq.scale.policy import Decision, Memory, Observation, Policy, decide
from wq.store import layout
from wq.store.queue import RunQueue

EXIT_DONE = 0
EXIT_STOPPED = 128 + signal.SIGTERM
# How long the Job may be missing or unreadable before the controller has ever read it: Helm
# creates it beside the controller, and a Role may take a moment to apply.
JOB_WAIT_S = 300.0
# The rate is measured over at least this long (and 4 steps), and back to MIN_FINISHED
# finishes when items are slow.
RATE_WINDOW_S = 60.0
MIN_FINISHED = 3
# A hold is logged at info level at most this often (every step at debug level).
NOTE_S = 60.0


@dataclass(frozen=True)
class JobState:
    """What the controller reads of the worker Job."""

    parallelism: int
    active: int  # pods running or starting
    ready: int  # pods ready
    finished: str | None  # "Complete" or "Failed" once the Job has finished; None: running


class JobGone(Exception):
    """The worker Job was read once and is gone now."""


class JobControl(Protocol):
    """The worker Job, as the controller reads and sizes it (wq.scale.kube.KubeJob for real). Calls
    raise KubernetesUnavailable when the API fails."""

    name: str

    def read(self) -> JobState | None:
        """The Job now; None if there is no such Job."""

    def scale(self, parallelism: int) -> None:
        """Set the Job's parallelism."""

    def record(self, reason: str, message: str) -> None:
        """Record a Kubernetes Event on the Job."""


# Kubernetes' names: a Job's is a DNS subdomain (RFC 1123), a namespace's a DNS label.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
JOB_NAME = re.compile(rf"(?=.{{1,253}}\Z){_DNS_LABEL}(\.{_DNS_LABEL})*")
NAMESPACE = re.compile(_DNS_LABEL)


@dataclass(frozen=True)
class AutoscaleConfig(AutoscaleOptions):
    """What `wq autoscale` sizes, and how (its options: wq.base.command_options)."""

    def __post_init__(self) -> None:
        # Checked before anything is read: a name the API server would refuse is no Job to
        # wait JOB_WAIT_S for.
        if not JOB_NAME.fullmatch(self.job):
            raise ConfigError(
                f"--job {self.job[:80]!r} is not a Job name: at most 253 lowercase letters, "
                "digits, '-' and '.', starting and ending with a letter or digit"
            )
        if self.namespace and not NAMESPACE.fullmatch(self.namespace):
            raise ConfigError(
                f"--namespace {self.namespace[:80]!r} is not a namespace name: at most 63 "
                "lowercase letters, digits and '-', starting and ending with a letter or digit"
            )

    def policy(self, concurrency: int) -> Policy:
        return Policy(
            min_pods=self.min_pods,
            max_pods=self.max_pods,
            target_s=self.target_s,
            items_per_pod=self.items_per_pod,
            cooldown_s=self.cooldown_s,
            concurrency=concurrency,
        )


class Sample(NamedTuple):
    at: float
    finished: int  # done + dead
    pods: int  # ready worker pods


class Meter:
    """Items finished per second and the worker pods that finished them. The rate spans the
    last `window_s` seconds, and further back until MIN_FINISHED items finished in it (slow
    items finish a few an hour), as far as `history` samples go; the pods are the fewest ready
    during that span, so pods that have just started, and finished nothing yet, do not make
    the others look slow."""

    def __init__(self, window_s: float, history: int = 10_000) -> None:
        self.window_s = window_s
        self.samples: deque[Sample] = deque(maxlen=history)
        self.last_finish: float | None = None  # when `finished` last grew

    def add(self, at: float, finished: int, pods: int) -> None:
        if self.samples and finished < self.samples[-1].finished:
            self.samples.clear()  # dead items were retried: the count restarts
        if not self.samples or finished > self.samples[-1].finished:
            self.last_finish = at
        self.samples.append(Sample(at, finished, pods))

    def rate(self) -> tuple[float | None, int]:
        """(items/s, pods); None while the samples span less than half the window."""
        if len(self.samples) < 2:
            return None, 0
        newest = self.samples[-1]
        first = len(self.samples) - 2
        for i in range(len(self.samples) - 2, -1, -1):
            first = i
            s = self.samples[i]
            if newest.at - s.at >= self.window_s and newest.finished - s.finished >= MIN_FINISHED:
                break
        # Back to just after the finish before: a span that starts at a finish would count
        # one gap less than it holds (a third too fast, with 3 slow items).
        while first > 0 and self.samples[first - 1].finished == self.samples[first].finished:
            first -= 1
        start = self.samples[first]
        span = newest.at - start.at
        if span < self.window_s / 2:
            return None, 0
        pods = min(s.pods for s in list(self.samples)[first:])
        return (newest.finished - start.finished) / span, pods

    def idle_s(self, now: float) -> float | None:
        """Seconds since an item last finished (or since the first sample, if none has since)."""
        if not self.samples:
            return None
        return now - (self.last_finish if self.last_finish is not None else self.samples[0].at)


class Autoscaler:
    def __init__(
        self,
        queue: RunQueue,
        job: JobControl,
        config: AutoscaleConfig,
        policy: Policy,
        log: EventLog,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.job = job
        self.config = config
        self.policy = policy
        self.log = log.bind(run=queue.run, job=job.name)
        self.clock = clock
        self.meter = Meter(max(RATE_WINDOW_S, 4 * config.interval_s))
        self.memory = Memory()
        self.started = clock()
        self.seen_seeded = False
        self.seen_job = False
        self.last_note = -NOTE_S
        self.stop = threading.Event()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.log.info("stop.requested", signal=signal.Signals(signum).name)
        self.stop.set()

    def run(self) -> int:
        p = self.policy
        mode = (
            {"items_per_worker": p.items_per_pod} if p.items_per_pod else {"target_s": p.target_s}
        )
        self.log.info(
            "autoscale.start",
            min=p.min_pods,
            max=p.max_pods,
            interval_s=self.config.interval_s,
            cooldown_s=p.cooldown_s,
            **mode,
        )
        while True:
            code = self.step()
            if code is not None:
                return code
            if self.stop.wait(self.config.interval_s):
                self.log.info("autoscale.stopped")
                return EXIT_STOPPED

    def step(self) -> int | None:
        """One step; returns the exit code once there is nothing left to scale, else None."""
        now = self.clock()
        status, durations = self.queue.reading.metrics()
        if self.seen_seeded and not status.seeded:
            self.log.error("run.lost", hint="the run was seeded and its keys are gone")
            raise RunLost(self.queue.run)
        self.seen_seeded = status.seeded
        if status.drained:
            self.log.info("run.drained", done=status.done, dead=status.dead)
            return EXIT_DONE
        try:
            state = self._read_job(now)
        except JobGone:
            return EXIT_DONE
        if state is None:
            return None
        if state.finished:
            self.log.info("job.finished", condition=state.finished)
            return EXIT_DONE
        self.meter.add(now, status.done + status.dead, state.ready)
        decision = decide(
            self._observe(status, durations, now),
            state.parallelism,
            self.policy,
            self.memory,
            now,
        )
        self.memory = decision.memory
        if decision.stop:
            return EXIT_DONE
        if decision.target != state.parallelism:
            self._scale(state.parallelism, decision)
        else:
            self._note(now, state, decision)
        self.queue.admin.record_scaling(
            self.job.name, state.parallelism, decision.target, decision.reason
        )
        return None

    def _read_job(self, now: float) -> JobState | None:
        """The Job; None if it cannot be read now. Not for JOB_WAIT_S seconds before it was
        ever read is a configuration error; once read, a Job gone was deleted (JobGone)."""
        waited = now - self.started
        try:
            state = self.job.read()
        except KubernetesUnavailable as exc:
            if not self.seen_job and waited >= JOB_WAIT_S:
                raise ConfigError(
                    f"cannot read job {self.job.name} for {waited:.0f}s: {exc}; check the "
                    "name, the namespace and the Role that lets this pod get and patch it"
                ) from None
            self.log.warning("job.unreadable", error=str(exc))
            return None
        if state is not None:
            self.seen_job = True
        elif self.seen_job:
            self.log.info("job.gone", hint="the worker Job was deleted: nothing left to scale")
            raise JobGone()
        elif waited >= JOB_WAIT_S:
            raise ConfigError(
                f"job {self.job.name} not found for {waited:.0f}s: check --job and --namespace"
            )
        else:
            self.log.info("job.waiting", waited_s=round(waited))
        return state

    def _observe(self, status: RunStatus, durations: layout.Durations, now: float) -> Observation:
        rate, pods = self.meter.rate()
        return Observation(
            seeded=status.seeded,
            lost=False,  # step() stopped already
            pending=status.pending,
            in_flight=status.in_flight,
            done=status.done,
            dead=status.dead,
            rate=rate,
            pods=pods,
            idle_s=self.meter.idle_s(now),
            running_s=status.elapsed_s,
            item_seconds=durations.mean_s,
        )

    def _scale(self, current: int, decision: Decision) -> None:
        target = decision.target
        try:
            self.job.scale(target)
        except KubernetesUnavailable as exc:
            self.log.warning("autoscale.failed", parallelism=current, target=target, error=str(exc))
            return
        self.log.info(
            "autoscale.scaled", parallelism=current, target=target, reason=decision.reason
        )
        try:
            self.job.record(
                "ScaledUp" if target > current else "ScaledDown",
                f"parallelism {current} -> {target}: {decision.reason}",
            )
        except KubernetesUnavailable as exc:
            self.log.warning("event.failed", error=str(exc))

    def _note(self, now: float, state: JobState, decision: Decision) -> None:
        info = now - self.last_note >= NOTE_S
        if info:
            self.last_note = now
        self.log.emit(
            "info" if info else "debug",
            "autoscale.hold",
            {"parallelism": state.parallelism, "ready": state.ready, "reason": decision.reason},
        )
