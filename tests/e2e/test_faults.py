"""Faults: worker pods die, an item always fails (issue 5, scenarios 3 and 5; Redis restarts,
scenario 4, are in test_redis_restarts.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.e2e.checks import assert_clean, assert_counts, wait_for_progress, worker_pods
from tests.e2e.kube import (
    Kube,
    container_pid,
    job_condition,
    kill_on_node,
)
from tests.e2e.release import Release, Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def last_item_worked_on(logs: str) -> int:
    return int(re.findall(r"Working on (\d+)$", logs, re.MULTILINE)[-1])


def just_started(rel: Release, pod: str, within_s: float, leased: set[int]) -> int | None:
    """The item `pod` started less than `within_s` ago (by its log's timestamps) and holds a
    lease on (in `leased`, read before the log), or None: killing the pod now kills it
    mid-item, with time to spare. The age is taken last, after every kubectl call."""
    starts = re.findall(
        r"^(\S+) Working on (\d+)$", rel.kube("logs", "--timestamps", pod), re.MULTILINE
    )
    if not starts:
        return None
    stamp, item = starts[-1]
    # RFC 3339 with nanoseconds; fromisoformat takes microseconds.
    started = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", stamp))
    age = (datetime.now(UTC) - started).total_seconds()
    return int(item) if age < within_s and int(item) in leased else None


def test_pods_die(release: Releases, namespace: Kube) -> None:
    """Scenario 3: one worker pod deleted gracefully, another killed with SIGKILL mid-item:
    the Job completes, nothing is lost, the killed pod's item is reclaimed after its lease."""
    rel = release("dying")
    rel.install(
        {
            "itemRange": {"start": 0, "end": 30},
            "worker": {
                "parallelism": 3,
                "demoSleep": 4,
                "lease": 5,
                "poll": 0.5,
                "terminationGracePeriodSeconds": 10,
            },
        }
    )
    pods = wait_for_progress(rel, done=3, busy_pods=3)
    # Looked up beforehand, so that the kill, once its moment comes, is one docker exec.
    pids = {pod: container_pid(namespace, pod, "worker") for pod in pods}

    # Kill a pod that has just started its item: with 4 s items, at least 3 s are left for
    # the kill to land mid-item however busy the machine (a pod killed between items, with a
    # lease it never started on, is handed back without a retry being charged).
    def starter() -> tuple[str, int] | None:
        leased = rel.leased_positions()
        for pod in pods:
            if (item := just_started(rel, pod, 1.0, leased)) is not None:
                return pod, item
        return None

    killed, _ = wait_until(
        "a worker pod that has just started an item", starter, timeout=120, interval=0.2
    )
    kill_on_node(*pids[killed])

    # The pod stopped gracefully is also one mid-item: one between items holds nothing to
    # hand back.
    def graceful_starter() -> str | None:
        leased = rel.leased_positions()
        survivors = (pod for pod in pods if pod != killed)
        started = (pod for pod in survivors if just_started(rel, pod, 1.0, leased) is not None)
        return next(started, None)

    graceful = wait_until(
        "another worker pod that has just started an item",
        graceful_starter,
        timeout=120,
        interval=0.2,
    )
    namespace("delete", "pod", graceful, "--wait=false")
    job = rel.wait(timeout=300)

    assert_clean(rel.status(), total=30)
    status = rel.status()
    assert status["released"] >= 1, "the gracefully stopped worker handed its item back"
    assert status["retried"] >= 1, "the killed worker's lease expired and was reclaimed"
    assert job["status"].get("failed", 0) >= 2, job["status"]
    killed_pod = namespace.get("pod", killed)
    (container,) = killed_pod["status"]["containerStatuses"]
    assert container["state"]["terminated"]["exitCode"] == 137
    held = last_item_worked_on(namespace("logs", killed))
    done_by = rel.done_by()
    assert sorted(done_by) == list(range(30))
    assert done_by[held] != killed, "a survivor finished the killed item"
    assert done_by[held] in worker_pods(rel)


POISON_ITEMS = ["1", "[2]", '{"three": 3}', "{oops", "5"]  # json.loads fails on "{oops"


def test_poison_item(release: Releases) -> None:
    """Scenario 5: an item that always fails ends dead with its error; the Job completes, or
    with failOnDead ends Failed through the exit code 3 rule."""
    lenient, strict = release("lenient"), release("strict")
    for rel, fail_on_dead in ((lenient, False), (strict, True)):
        rel.install(
            {
                "items": POISON_ITEMS,
                "worker": {
                    "parallelism": 2,
                    "handler": "python",
                    "python": "json:loads",
                    "maxAttempts": 2,
                    "failOnDead": fail_on_dead,
                },
            }
        )
    lenient.wait(timeout=240)
    failed = strict.wait(timeout=240, expect="Failed")

    for rel in (lenient, strict):
        assert_counts(rel.status(), total=5, done=4, dead=1)
        (dead,) = rel.dead()
        assert (dead["position"], dead["item"]) == (3, "{oops")
        assert "Expecting property name" in dead["error"]
    assert lenient.helm("test", lenient.name, "--logs", check=False).returncode != 0, (
        "helm test must fail on a run with dead items"
    )
    condition = job_condition(failed, "Failed")
    assert condition["reason"] == "PodFailurePolicy", condition
    assert "exit code 3" in condition["message"], condition
    assert "run.dead_items" in strict.worker_logs()
