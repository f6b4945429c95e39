"""Issue 14 on a real cluster: `wq autoscale` sizes the worker Job from the run's counts, the
Job controller's scale-down costs no item an attempt, the controller is not on the critical
path, and its RBAC reaches its own worker Job only.

`make bench-autoscale` (marked `bench`, never in `make test`) runs the autoscaled run again,
then the same run at fixed sizes, one at a time: its closing note compares them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.checks import assert_clean
from tests.e2e.kube import Kube
from tests.e2e.release import Release, Releases
from tests.polling import wait_until

pytestmark = pytest.mark.timeout(900)

ITEMS = 2000
ITEM_S = 0.05


def values(parallelism: int, autoscale: dict[str, Any] | None = None) -> dict[str, Any]:
    worker: dict[str, Any] = {"parallelism": parallelism, "demoSleep": ITEM_S}
    if autoscale is not None:
        worker["autoscale"] = {"enabled": True, "interval": 2, "cooldown": 5, **autoscale}
    return {"itemRange": {"start": 0, "end": ITEMS}, "worker": worker}


AUTOSCALED = values(1, {"min": 1, "max": 6, "targetSeconds": 20})


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Watch:
    """What a background poll of the worker Job and its pods saw: every parallelism the Job
    had, and each pod's running span (pods the Job controller deletes vanish from the API, so
    they are timed from what was seen of them)."""

    parallelism: list[int] = field(default_factory=list)
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)

    def pod_seconds(self) -> float:
        return sum(end - start for start, end in self.spans.values())

    def look(self, rel: Release) -> None:
        job = rel.kube.find("job", rel.worker_job())
        if job is not None:
            self.parallelism.append(int(job["spec"].get("parallelism", 0)))
        now = time.time()
        for pod in rel.kube.items("pods", f"job-name={rel.worker_job()}"):
            started = pod.get("status", {}).get("startTime")
            if not started:
                continue
            end = now
            for status in pod["status"].get("containerStatuses", []):
                finished = status.get("state", {}).get("terminated", {}).get("finishedAt")
                if finished:
                    end = stamp(finished)
            self.spans[pod["metadata"]["name"]] = (stamp(started), end)


@contextmanager
def watching(rel: Release) -> Iterator[Watch]:
    watch = Watch()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            watch.look(rel)
            stop.wait(1.0)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join()
        watch.look(rel)


def scaling_events(kube: Kube, job: str) -> list[str]:
    events = kube.items("events", "")
    return [
        e["reason"]
        for e in events
        if e["involvedObject"].get("name") == job and e["reason"].startswith("Scaled")
    ]


def assert_every_item_done_once(rel: Release) -> None:
    status = rel.status()
    assert_clean(status, total=ITEMS)
    assert status["retried"] == 0, "no lease was reaped or charged"
    records = rel.report()
    assert len(records) == ITEMS
    assert {r["state"] for r in records} == {"done"}
    assert {r["attempts"] for r in records} == {1}, "a scale-down cost an item an attempt"


def can_i(kube: Kube, account: str, *what: str) -> bool:
    subject = f"--as=system:serviceaccount:{kube.namespace}:{account}"
    answer = kube("auth", "can-i", *what, subject, check=False).strip()
    return answer == "yes"


@pytest.mark.e2e
@pytest.mark.bench
def test_autoscaled_run_grows_shrinks_and_costs_no_attempt(
    release: Releases, namespace: Kube, record_timing: Callable[[str, float], None]
) -> None:
    rel = release("wq-elastic")
    started = time.monotonic()
    rel.install(AUTOSCALED)
    with watching(rel) as watch:
        job = rel.wait(timeout=600)
    record_timing(
        f"issue 14: {ITEMS} items of {ITEM_S}s autoscaled 1..6, install to Complete "
        f"({watch.pod_seconds():.0f} pod-seconds, sizes {sorted(set(watch.parallelism))})",
        time.monotonic() - started,
    )
    assert job["status"].get("failed", 0) == 0
    peak = max(watch.parallelism)
    assert peak > 1, watch.parallelism
    assert peak <= 6
    # It fell before the end: a later size below the peak.
    after_peak = watch.parallelism[watch.parallelism.index(peak) :]
    assert min(after_peak) < peak, watch.parallelism
    reasons = scaling_events(namespace, rel.worker_job())
    assert "ScaledUp" in reasons
    assert "ScaledDown" in reasons
    assert_every_item_done_once(rel)
    scaler = f"{rel.run_id()}-scaler"
    wait_until(f"{scaler} Complete", lambda: job_done(namespace, scaler), 120, interval=1)

    # RBAC: the controller may get and patch its own worker Job, nothing else.
    account = f"{rel.fullname}-autoscaler"
    assert can_i(namespace, account, "patch", f"job/{rel.worker_job()}")
    assert can_i(namespace, account, "get", f"job/{rel.worker_job()}")
    assert not can_i(namespace, account, "patch", "job/some-other-job")
    assert not can_i(namespace, account, "delete", f"job/{rel.worker_job()}")
    assert not can_i(namespace, account, "list", "pods")
    assert can_i(namespace, account, "create", "events")


def job_done(kube: Kube, name: str) -> bool:
    job = kube.find("job", name)
    conditions = (job or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)


@pytest.mark.e2e
def test_the_run_completes_when_the_controller_dies(release: Releases, namespace: Kube) -> None:
    rel = release("wq-orphan")
    rel.install(AUTOSCALED)

    def grown() -> int | None:
        job = namespace.find("job", rel.worker_job())
        size = int(job["spec"]["parallelism"]) if job else 0
        return size if size > 1 else None

    wait_until("the controller growing the worker Job", grown, timeout=300, interval=1)
    scaler = f"{rel.run_id()}-scaler"
    namespace("delete", "job", scaler, "--cascade=foreground", "--wait=true")
    last = int(namespace.get("job", rel.worker_job())["spec"]["parallelism"])
    job = rel.wait(timeout=600)
    assert job["spec"]["parallelism"] == last, "nothing changed it after the controller died"
    assert_every_item_done_once(rel)


@pytest.mark.bench
@pytest.mark.parametrize("fixed", [6, 1])
def test_fixed_parallelism_for_comparison(
    release: Releases, fixed: int, record_timing: Callable[[str, float], None]
) -> None:
    """The same run at a fixed size, back to back with the autoscaled one (the closing note
    compares install-to-Complete and pod-seconds; nothing here depends on them). Minutes that
    prove nothing the autoscaled run does not: `make bench-autoscale` only."""
    rel = release(f"wq-fixed-{fixed}")
    started = time.monotonic()
    rel.install(values(fixed))
    with watching(rel) as watch:
        rel.wait(timeout=600)
    record_timing(
        f"issue 14: {ITEMS} items of {ITEM_S}s at fixed parallelism {fixed}, install to "
        f"Complete ({watch.pod_seconds():.0f} pod-seconds)",
        time.monotonic() - started,
    )
    assert_every_item_done_once(rel)
