"""`wq autoscale`'s loop (wq.scale.autoscale) against a real Redis, with a worker Job of the
tests' own:
RecordingJob implements the loop's narrow JobControl interface and remembers what it was told
(the calls to the Kubernetes API themselves, wq.scale.kube, are covered by the kind e2e tests)."""

import io
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from tests.polling import wait_until
from tests.unit.cli_runner import wq
from tests.unit.conftest import make_queue
from wq.base.errors import ConfigError, KubernetesUnavailable, RedisUnavailable, RunLost
from wq.base.item import encode
from wq.base.logs import EventLog
from wq.scale.autoscale import (
    EXIT_DONE,
    EXIT_STOPPED,
    JOB_WAIT_S,
    AutoscaleConfig,
    Autoscaler,
    JobState,
    Meter,
)
from wq.seed.items_source import ItemRange
from wq.seed.seeder import seed_items, seed_range
from wq.store.local_redis import RedisServer
from wq.store.queue import RunQueue

CONFIG = AutoscaleConfig(job="r-worker", min_pods=1, max_pods=10, target_s=600, cooldown_s=120)


class RecordingJob:
    """A worker Job that does at once what it is told (all its pods ready) and remembers it;
    `failing` names a call that raises KubernetesUnavailable, as the API can."""

    def __init__(self, parallelism: int, name: str = "r-worker") -> None:
        self.name = name
        self.parallelism = parallelism
        self.ready: int | None = None  # None: as many as the parallelism
        self.finished: str | None = None
        self.exists = True
        self.failing: set[str] = set()
        self.scaled: list[int] = []
        self.events: list[tuple[str, str]] = []

    def _maybe_fail(self, call: str) -> None:
        if call in self.failing:
            raise KubernetesUnavailable(f"could not {call} job {self.name}: 503 Unavailable")

    def read(self) -> JobState | None:
        self._maybe_fail("read")
        if not self.exists:
            return None
        ready = self.parallelism if self.ready is None else self.ready
        return JobState(self.parallelism, ready, ready, self.finished)

    def scale(self, parallelism: int) -> None:
        self._maybe_fail("scale")
        self.parallelism = parallelism
        self.scaled.append(parallelism)

    def record(self, reason: str, message: str) -> None:
        self._maybe_fail("record")
        self.events.append((reason, message))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Loop:
    """An Autoscaler on the test's run, its Job, its clock and its log."""

    def __init__(
        self, queue: RunQueue, job: RecordingJob, config: AutoscaleConfig = CONFIG
    ) -> None:
        self.job = job
        self.clock = Clock()
        self.out = io.StringIO()
        log = EventLog(level="debug", stream=self.out)
        self.scaler = Autoscaler(queue, job, config, config.policy(1), log, clock=self.clock)

    def step_at(self, now: float) -> int | None:
        self.clock.now = now
        return self.scaler.step()

    def logged(self, event: str) -> list[str]:
        return [line for line in self.out.getvalue().splitlines() if f"event={event} " in line]


def finish(queue: RunQueue, n: int) -> None:
    """Lease n items and record them done, as workers would."""
    items = queue.leases.lease(n, 30, "finisher").items
    assert queue.leases.complete("finisher", "w", [i.position for i in items]) == []


def test_scales_up_when_the_pods_would_not_finish_in_time(queue: RunQueue) -> None:
    seed_range(queue, ItemRange(0, 1000, 1))
    loop = Loop(queue, RecordingJob(parallelism=2))
    assert loop.step_at(0.0) is None
    assert loop.job.scaled == []
    finish(queue, 20)
    assert loop.step_at(30.0) is None
    # 20 items in 30s from 2 pods: 1/3 item/s each; 980 left in 600s need 5 pods.
    assert loop.job.scaled == [5]
    reason = "980 item(s) left at 0.333 item(s)/s per pod: 5 pod(s) finish them in about 600s"
    assert loop.job.events == [("ScaledUp", f"parallelism 2 -> 5: {reason}")]
    [line] = loop.logged("autoscale.scaled")
    assert "parallelism=2 target=5" in line
    recorded = queue.reading.scaling()
    assert recorded is not None
    assert (recorded.job, recorded.current, recorded.target, recorded.reason) == (
        "r-worker",
        2,
        5,
        reason,
    )


def test_holds_and_records_why_while_the_pods_keep_up(queue: RunQueue) -> None:
    seed_range(queue, ItemRange(0, 1000, 1))
    loop = Loop(queue, RecordingJob(parallelism=5))
    loop.step_at(0.0)
    finish(queue, 300)  # 10/s from 5 pods: 700 left take 70s
    assert loop.step_at(30.0) is None
    assert loop.job.scaled == []
    recorded = queue.reading.scaling()
    assert recorded is not None
    assert (recorded.current, recorded.target) == (5, 5)
    assert recorded.reason.startswith("700 item(s) left at 2 item(s)/s per pod: 1 pod(s)")
    assert "but 0 item(s) in flight" not in recorded.reason
    assert loop.logged("autoscale.hold")


def test_tail_shrinks_to_the_pods_holding_items_after_the_cooldown(queue: RunQueue) -> None:
    seed_items(queue, [encode(n) for n in range(10)])
    held = [queue.leases.lease(1, 30, f"pod{n}").items[0] for n in range(10)]
    for n, item in enumerate(held[:7]):
        assert queue.leases.complete(f"pod{n}", "w", [item.position]) == []
    loop = Loop(queue, RecordingJob(parallelism=8))
    assert loop.step_at(0.0) is None
    assert loop.step_at(60.0) is None
    assert loop.job.scaled == []
    recorded = queue.reading.scaling()
    assert recorded is not None
    assert "down to 3 once wanted for 120s (60s so far)" in recorded.reason
    assert loop.step_at(130.0) is None
    assert loop.job.scaled == [3]
    [(reason, message)] = loop.job.events
    assert reason == "ScaledDown"
    assert message.startswith("parallelism 8 -> 3: tail: nothing pending, 3 item(s) in flight")


def test_exits_0_once_the_run_is_drained(queue: RunQueue) -> None:
    seed_items(queue, [encode("a"), encode("b")])
    loop = Loop(queue, RecordingJob(parallelism=2))
    assert loop.step_at(0.0) is None
    finish(queue, 2)
    assert loop.step_at(10.0) == EXIT_DONE
    assert loop.logged("run.drained")


def test_run_returns_when_workers_drain_the_run(queue: RunQueue) -> None:
    """The whole loop with real time: a thread finishes items while the controller steps."""
    seed_range(queue, ItemRange(0, 40, 1))
    job = RecordingJob(parallelism=1)
    scaler = Autoscaler(
        queue, job, replace(CONFIG, interval_s=0.05), CONFIG.policy(1), EventLog(level="error")
    )
    done = threading.Event()

    def work() -> None:
        while not done.wait(0.01):
            items = queue.leases.lease(1, 30, "worker").items
            if not items:
                return
            queue.leases.complete("worker", "w", [i.position for i in items])

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        assert scaler.run() == EXIT_DONE
    finally:
        done.set()
        worker.join(10)
    assert queue.reading.status().drained


def test_sigterm_stops_the_loop(queue: RunQueue) -> None:
    seed_range(queue, ItemRange(0, 10, 1))
    scaler = Autoscaler(
        queue,
        RecordingJob(parallelism=1),
        replace(CONFIG, interval_s=0.05),
        CONFIG.policy(1),
        EventLog(level="error"),
    )
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(scaler.run()), daemon=True)
    thread.start()
    wait_until("a first step", queue.reading.scaling, 10)
    scaler.stop.set()
    thread.join(10)
    assert codes == [EXIT_STOPPED]


def test_a_lost_run_stops_it_with_the_run_lost_error(queue: RunQueue) -> None:
    seed_items(queue, [encode("a")])
    loop = Loop(queue, RecordingJob(parallelism=2))
    loop.step_at(0.0)
    queue.admin.purge()
    with pytest.raises(RunLost):
        loop.step_at(10.0)
    assert loop.logged("run.lost")
    assert queue.reading.scaling() is None


def test_waits_for_the_run_to_be_seeded(queue: RunQueue) -> None:
    loop = Loop(queue, RecordingJob(parallelism=3))
    assert loop.step_at(0.0) is None
    assert loop.step_at(1000.0) is None
    assert loop.job.scaled == []
    assert queue.reading.scaling() is None  # nothing is written beside a run that does not exist


def test_a_redis_outage_is_an_error_never_a_drained_run(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    queue = make_queue(server.url, "outage", budget=0.5)
    try:
        seed_range(queue, ItemRange(0, 10, 1))
        loop = Loop(queue, RecordingJob(parallelism=2))
        assert loop.step_at(0.0) is None
        server.stop()
        with pytest.raises(RedisUnavailable):
            loop.step_at(10.0)
        assert loop.job.scaled == []
    finally:
        queue.close()
        server.stop()


# --- the Job --------------------------------------------------------------------------------


def test_the_api_failing_is_logged_and_tried_again(queue: RunQueue) -> None:
    seed_range(queue, ItemRange(0, 1000, 1))
    loop = Loop(queue, RecordingJob(parallelism=2))
    loop.step_at(0.0)
    finish(queue, 20)
    loop.job.failing = {"scale"}
    assert loop.step_at(30.0) is None
    [line] = loop.logged("autoscale.failed")
    assert "503 Unavailable" in line
    assert (loop.job.scaled, loop.job.events) == ([], [])
    loop.job.failing = {"record"}
    assert loop.step_at(30.0) is None
    assert loop.job.scaled == [5]  # an Event that cannot be recorded does not stop a change
    assert loop.logged("event.failed")
    loop.job.failing = {"read"}
    assert loop.step_at(30.0) is None
    assert loop.logged("job.unreadable")


def test_a_job_never_read_for_a_while_is_a_configuration_error(queue: RunQueue) -> None:
    seed_range(queue, ItemRange(0, 10, 1))
    missing = Loop(queue, RecordingJob(parallelism=2))
    missing.job.exists = False
    assert missing.step_at(0.0) is None
    assert missing.logged("job.waiting")
    with pytest.raises(ConfigError, match="job r-worker not found for 300s"):
        missing.step_at(JOB_WAIT_S)
    forbidden = Loop(queue, RecordingJob(parallelism=2))
    forbidden.job.failing = {"read"}
    assert forbidden.step_at(0.0) is None
    with pytest.raises(ConfigError, match=r"cannot read job r-worker for 300s: .* the Role"):
        forbidden.step_at(JOB_WAIT_S)


def test_a_job_deleted_or_finished_ends_the_loop(queue: RunQueue) -> None:
    seed_range(queue, ItemRange(0, 10, 1))
    deleted = Loop(queue, RecordingJob(parallelism=2))
    assert deleted.step_at(0.0) is None
    deleted.job.exists = False
    assert deleted.step_at(10.0) == EXIT_DONE
    assert deleted.logged("job.gone")
    finished = Loop(queue, RecordingJob(parallelism=2))
    finished.job.finished = "Failed"
    assert finished.step_at(0.0) == EXIT_DONE
    [line] = finished.logged("job.finished")
    assert "condition=Failed" in line


def test_a_size_changed_by_someone_else_is_the_new_start(queue: RunQueue) -> None:
    """`kubectl scale`, or Helm applying the manifest again: the next step reads it."""
    seed_range(queue, ItemRange(0, 1000, 1))
    loop = Loop(queue, RecordingJob(parallelism=2))
    loop.step_at(0.0)
    loop.job.parallelism = 30
    assert loop.step_at(10.0) is None
    assert loop.job.scaled == [10]
    assert "30 pod(s) is outside the limits 1..10" in loop.job.events[0][1]


# --- the rate -------------------------------------------------------------------------------


def test_meter_measures_over_the_window() -> None:
    meter = Meter(window_s=60)
    meter.add(0, 0, 4)
    assert meter.rate() == (None, 0)
    meter.add(20, 40, 4)
    assert meter.rate() == (None, 0)  # less than half the window
    meter.add(40, 80, 4)
    assert meter.rate() == (2.0, 4)
    for t in range(60, 200, 20):
        meter.add(t, 2 * t, 4 if t < 140 else 8)
    rate, pods = meter.rate()
    assert rate == 2.0
    assert pods == 4  # the fewest over the last 60s: new pods have not made the rate yet


def test_meter_stretches_back_for_slow_items() -> None:
    """One item every 100s: a 60s window may see none; the rate goes back to 3 finishes."""
    meter = Meter(window_s=60)
    for t in range(0, 1001, 10):
        meter.add(t, t // 100, 10)
    rate, pods = meter.rate()
    assert rate is not None
    assert 0.009 <= rate <= 0.011
    assert pods == 10
    assert meter.idle_s(1005) == 5


def test_meter_restarts_when_dead_items_are_retried() -> None:
    meter = Meter(window_s=60)
    meter.add(0, 0, 1)
    meter.add(60, 100, 1)
    meter.add(70, 50, 1)  # retry-dead took 50 dead items back
    assert meter.rate() == (None, 0)
    assert meter.idle_s(100) == 30


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def no_cluster(tmp_path: Path) -> dict[str, str]:
    """Neither in a pod (no KUBERNETES_SERVICE_HOST) nor with a kubeconfig."""
    kubeconfig = str(tmp_path / "no-such-kubeconfig")
    return {"KUBECONFIG": kubeconfig, "KUBERNETES_SERVICE_HOST": "", "WQ_RUN": "r"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min", "5", "--max", "2"], "needs 1 <= min <= max pods (got min 5, max 2)"),
        (["--min", "0"], "0 is not in the range 1 to 10000"),
        (["--target-seconds", "0.5"], "0.5 is not in the range 1 to"),
        (["--interval", "0"], "0 is not in the range 1 to 3600"),
        (["--concurrency", "0"], "0 is not in the range 1 to 256"),
        ([], "no Kubernetes API to talk to"),
    ],
)
def test_command_refuses_bad_settings_with_exit_2(
    no_cluster: dict[str, str], args: list[str], message: str
) -> None:
    result = wq("autoscale", "--job", "r-worker", "--namespace", "ns", *args, env=no_cluster)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_command_needs_a_job_and_a_namespace_outside_a_pod(no_cluster: dict[str, str]) -> None:
    assert "Missing option '--job'" in wq("autoscale", env=no_cluster).stderr
    result = wq("autoscale", "--job", "r-worker", env=no_cluster)
    assert result.returncode == 2
    assert "--namespace not given" in result.stderr
