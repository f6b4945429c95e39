"""Assertions shared by the e2e scenarios."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from tests.e2e.release import Release
from tests.polling import wait_until

WORKING_ON = re.compile(r"Working on (\S+)$")


def worked_on(logs: str) -> Counter[str]:
    """How often the demo handler printed `Working on <item>` for each item."""
    return Counter(m.group(1) for line in logs.splitlines() if (m := WORKING_ON.search(line)))


def assert_clean(status: dict[str, Any], total: int) -> None:
    """Every item done, none pending, in flight or dead."""
    counts = {k: status[k] for k in ("total", "done", "pending", "in_flight", "dead", "state")}
    assert counts == {
        "total": total,
        "done": total,
        "pending": 0,
        "in_flight": 0,
        "dead": 0,
        "state": "drained",
    }


def assert_counts(status: dict[str, Any], total: int, done: int, dead: int) -> None:
    """A drained run with dead items."""
    counts = {k: status[k] for k in ("total", "done", "dead", "state")}
    assert counts == {
        "total": total,
        "done": done,
        "dead": dead,
        "state": "drained with dead items",
    }


def worker_pods(rel: Release, revision: int | None = None) -> list[str]:
    return rel.kube.pod_names(f"job-name={rel.worker_job(revision)}")


def wait_for_progress(rel: Release, done: int, busy_pods: int) -> list[str]:
    """Waits until `done` items are done and `busy_pods` running worker pods have started on
    an item; returns those pods."""

    def busy(pod: str) -> bool:
        return "Working on" in rel.kube("logs", pod, check=False)

    def progressed() -> list[str] | None:
        running = rel.kube.pod_names(f"job-name={rel.worker_job()}", phase="Running")
        pods = [pod for pod in running if busy(pod)]
        return pods if len(pods) >= busy_pods and rel.done_count() >= done else None

    return wait_until(
        f"{done} items done, {busy_pods} pods busy", progressed, timeout=180, interval=1.0
    )


def command_run(items: list[Any], script: str, max_attempts: int) -> dict[str, Any]:
    """Values of a run whose handler is `sh -c SCRIPT` (the item in $WQ_ITEM), 2 pods."""
    return {
        "items": items,
        "worker": {
            "parallelism": 2,
            "handler": "command",
            "command": ["sh", "-c", script],
            "maxAttempts": max_attempts,
        },
    }
