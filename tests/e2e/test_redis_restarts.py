"""Redis restarts (issue 5 scenario 4, issue 21): with the chart's defaults a restarted Redis
container keeps the run (its append-only file in the emptyDir) and the workers go on; with
persistence, on the cluster's default StorageClass, so does a deleted Redis pod, even when its
volume has come to belong to another user; without either the run is lost, and said so."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytest

from tests.e2e.checks import assert_clean, wait_for_progress, worked_on
from tests.e2e.kube import Kube, Obj, container_pid, docker, job_condition, kill_on_node
from tests.e2e.release import Release, Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def redis_pod(rel: Release) -> str:
    """The release's one Redis pod, once there is exactly one: right after an install its
    ReplicaSet may not have made it yet, and right after a delete the old one may linger."""

    def the_one() -> str | None:
        pods = rel.kube.pod_names(rel.selector("redis"))
        return pods[0] if len(pods) == 1 else None

    return wait_until("exactly one redis pod", the_one, timeout=120, interval=0.5)


def redis_container(rel: Release, pod: str) -> Obj:
    statuses = rel.kube.get("pod", pod)["status"].get("containerStatuses", [])
    return next((s for s in statuses if s["name"] == "redis"), {})


def wait_restarted(rel: Release, pod: str, restarts: int) -> None:
    """Until the Redis container of `pod` has restarted `restarts` times and is ready again."""

    def restarted() -> bool:
        status = redis_container(rel, pod)
        return status.get("restartCount", 0) >= restarts and bool(status.get("ready"))

    wait_until(f"redis container of {pod} restarted {restarts}x, ready", restarted, timeout=180)


def wait_for_done(rel: Release, done: int) -> None:
    wait_until(f"{done} items done", lambda: rel.done_count() >= done, timeout=120, interval=1.0)


def test_redis_container_killed_twice_keeps_the_run(
    release: Releases, record_figure: Callable[[str], None]
) -> None:
    """With the chart's defaults, redis-server is SIGKILLed twice mid-run, each time once its
    container is back: the workers wait the outages out (no worker pod fails), the Job completes
    with every item done exactly once in the ledger, and items run again at most the ones in
    flight at each kill plus a second of completions (a lost second of the append-only file)."""
    total, parallelism, demo_sleep = 240, 3, 0.5
    rel = release("killed")
    rel.install(
        {
            "itemRange": {"start": 0, "end": total},
            "worker": {"parallelism": parallelism, "demoSleep": demo_sleep},
        }
    )
    # The most items that can finish in one second: each worker runs one at a time, each item
    # at least demo_sleep long (one more per worker for an item that ends at the second's edge).
    per_second = math.ceil(parallelism / demo_sleep) + parallelism
    pod = redis_pod(rel)
    wait_for_progress(rel, done=15, busy_pods=parallelism)
    bound = 0
    for kill in (1, 2):
        node, pid = container_pid(rel.kube, pod, "redis")  # a new process after a restart
        in_flight = len(rel.leased_positions())
        done = rel.done_count()
        assert done < total - 30, "the kill comes mid-run"
        kill_on_node(node, pid)
        killed = time.monotonic()
        wait_restarted(rel, pod, kill)
        back = time.monotonic() - killed
        wait_for_done(rel, done + 1)
        going = time.monotonic() - killed
        bound += in_flight + per_second
        record_figure(
            f"redis kill {kill}: {in_flight} items in flight, {done} done at the kill; "
            f"container ready again after {back:.1f}s, items done again after {going:.1f}s"
        )
        wait_for_done(rel, done + 15)

    job = rel.wait(timeout=300)
    assert job["status"].get("failed", 0) == 0, "every worker rode the Redis outages out"
    assert redis_container(rel, pod)["restartCount"] == 2, "Redis restarted once per kill"
    assert redis_pod(rel) == pod, "the same pod, its emptyDir kept"
    assert_clean(rel.status(), total=total)
    rel.wq("status", "--check")  # every position done or dead exactly once
    runs = worked_on(rel.worker_logs())
    assert set(runs) == {str(i) for i in range(total)}
    extra = sum(runs.values()) - total
    record_figure(f"redis killed twice: {extra} extra executions of {total} items (bound {bound})")
    assert extra <= bound, runs.most_common(10)


def default_storage_class(kube: Kube) -> Obj:
    classes = kube.items("storageclass")
    defaults = [
        c for c in classes if c["metadata"].get("annotations", {}).get(DEFAULT_CLASS) == "true"
    ]
    assert len(defaults) == 1, f"the cluster has one default StorageClass: {defaults}"
    return defaults[0]


def test_redis_pod_deleted_with_persistence(
    release: Releases, namespace: Kube, node: str, record_figure: Callable[[str], None]
) -> None:
    """Persistence on, on the cluster's default StorageClass (make kind-up's local-path
    provisioner): the Redis pod is deleted mid-run and nothing is lost. Before that its volume is
    given to root, as storage that ignores fsGroup hands it out: the next Redis could not write
    it, and volumePermissions' init container gives it back to Redis' user."""
    storage_class = default_storage_class(namespace)
    rel = release("durable")
    rel.install(
        {
            "itemRange": {"start": 0, "end": 30},
            "worker": {"parallelism": 2, "demoSleep": 1, "redisWait": 120},
            "redis": {
                "persistence": {
                    "enabled": True,
                    "size": "1Gi",
                    "volumePermissions": {"enabled": True},
                }
            },
        }
    )
    wait_for_progress(rel, done=4, busy_pods=2)
    assert rel.redis_cli("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
    claim = namespace.get("pvc", rel.redis_name)
    assert claim["spec"]["storageClassName"] == storage_class["metadata"]["name"]
    volume = namespace.get("pv", claim["spec"]["volumeName"])
    annotations = volume["metadata"]["annotations"]
    assert annotations["pv.kubernetes.io/provisioned-by"] == storage_class["provisioner"]
    path = (volume["spec"].get("hostPath") or volume["spec"]["local"])["path"]
    docker("exec", node, "chown", "-R", "0:0", path)
    docker("exec", node, "chmod", "0755", path)
    old_redis = redis_pod(rel)

    namespace("delete", "pod", old_redis, "--wait=false")
    rel.wait(timeout=300)

    new_redis = redis_pod(rel)
    assert new_redis != old_redis, "Redis was really restarted"
    (init,) = namespace.get("pod", new_redis)["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["exitCode"] == 0, init
    owner = docker("exec", node, "stat", "-c", "%u:%g", path).strip()
    assert owner == "999:999", "the volume is Redis' user's again"
    assert_clean(rel.status(), total=30)
    assert sorted(rel.done_by()) == list(range(30))
    extra = sum(worked_on(rel.worker_logs()).values()) - 30
    record_figure(f"redis pod deleted with persistence: {extra} extra executions of 30 items")


def test_redis_pod_deleted_without_persistence_fails_the_job_as_lost(
    release: Releases, namespace: Kube, record_timing: Callable[[str, float], None]
) -> None:
    """Without persistence a deleted Redis pod takes its emptyDir, append-only file and all:
    the new one has forgotten the run. The workers say so and exit 4, the Job fails at once
    through the pod failure policy, and helm test says the same."""
    rel = release("forgetful")
    rel.install(
        {
            "itemRange": {"start": 0, "end": 60},
            "worker": {"parallelism": 2, "demoSleep": 1, "redisWait": 120},
        }
    )
    wait_for_progress(rel, done=4, busy_pods=2)
    old_redis = redis_pod(rel)
    namespace("delete", "pod", old_redis, "--wait=false")
    deleted = time.monotonic()
    failed = rel.wait(timeout=120, expect="Failed")
    seconds = time.monotonic() - deleted
    record_timing("redis pod deleted without persistence: to Job Failed", seconds)
    condition = job_condition(failed, "Failed")
    assert condition["reason"] == "PodFailurePolicy", condition
    assert "exit code 4" in condition["message"], condition
    assert "event=run.lost" in rel.worker_logs()
    tested = rel.helm("test", rel.name, "--logs", check=False)
    assert tested.returncode != 0, "helm test must fail on a lost run"
    assert "was seeded but its keys are gone" in tested.stdout + tested.stderr
