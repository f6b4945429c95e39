"""Poison items cost themselves, never a pod (issue 21): the python handler runs in a process
of its own, so an item that runs it out of memory under the pod's limit, crashes it, exits,
hangs past itemTimeout or kills its process group fails alone, at once, with its reason."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.checks import assert_clean, assert_counts
from tests.e2e.kube import Kube, docker
from tests.e2e.release import Images, Release, Releases
from tests.poison import REASONS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

POISON_MODULE = Path(__file__).resolve().parents[1] / "poison.py"
POISON = ["allocate", "segfault", "exit", "hang", "killpg"]
TOTAL = 2000
# Each plain item's time: the clean run's 2,000 items are 10 s of work for its 4 pods.
ITEM_S = 0.02


def values(items: list[str]) -> dict[str, object]:
    """Worker pods that import tests/poison.py from a ConfigMap on their PYTHONPATH."""
    return {
        "items": items,
        "worker": {
            "parallelism": 4,
            "handler": "python",
            "python": "poison:handle",
            "maxAttempts": 2,
            "itemTimeout": 3,
            "extraEnv": [
                {"name": "PYTHONPATH", "value": "/handlers"},
                {"name": "POISON_SLEEP_S", "value": str(ITEM_S)},
            ],
            "extraVolumes": [{"name": "handlers", "configMap": {"name": "poison-handler"}}],
            "extraVolumeMounts": [{"name": "handlers", "mountPath": "/handlers", "readOnly": True}],
        },
    }


def run(rel: Release, items: list[str]) -> tuple[float, dict[str, object]]:
    """Installs, waits for the worker Job to complete; (seconds from install, the Job)."""
    started = time.monotonic()
    rel.install(values(items))
    job = rel.wait(timeout=600)
    return time.monotonic() - started, job


def failed_pods(rel: Release) -> list[str]:
    pods = json.loads(rel.kube("get", "pods", "-l", f"job-name={rel.worker_job()}", "-o", "json"))
    return [
        f"{p['metadata']['name']}: {p['status'].get('phase')}"
        for p in pods["items"]
        if p["status"].get("phase") == "Failed"
        or any(c.get("restartCount") for c in p["status"].get("containerStatuses", []))
    ]


def test_poison_items_are_dead_with_their_reasons_and_no_pod_fails(
    namespace: Kube,
    release: Releases,
    images: Images,
    node: str,
    record_timing: Callable[[str, float], None],
) -> None:
    namespace.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "poison-handler"},
            "data": {"poison.py": POISON_MODULE.read_text(encoding="utf-8")},
        }
    )
    plain = [f"item-{n}" for n in range(TOTAL - len(POISON))]
    items = plain[:]
    for n, kind in enumerate(POISON):  # spread over the run
        items.insert((n + 1) * TOTAL // (len(POISON) + 1), kind)

    # The same run without poison first: what the poison costs in run time. Neither pays for
    # pulling the image.
    docker("exec", node, "crictl", "pull", images.worker.ref)
    clean = release("clean")
    clean_s, _ = run(clean, [f"item-{n}" for n in range(TOTAL)])
    assert_clean(clean.status(), TOTAL)
    clean.helm("uninstall", clean.name, "--wait")

    rel = release("poison")
    poison_s, job = run(rel, items)
    record_timing("2,000 items, no poison: install to Job Complete", clean_s)
    record_timing("2,000 items, 5 poison: install to Job Complete", poison_s)
    print(
        f"\nrun time: {poison_s:.1f}s with 5 poison items, {clean_s:.1f}s without "
        f"({poison_s / clean_s:.2f}x)"
    )

    assert job["status"].get("failed", 0) == 0, job["status"]
    assert failed_pods(rel) == []
    assert_counts(rel.status(), total=TOTAL, done=TOTAL - len(POISON), dead=len(POISON))
    records = {r["item"]: r for r in rel.report()}
    for kind in POISON:
        r = records[kind]
        print(f"{kind}: {r['state']}, {r['attempts']} attempts: {r['error']}")
        assert (r["state"], r["attempts"]) == ("dead", 2), r
        assert r["error"].startswith(REASONS[kind]), r
    # Out of memory: the function's MemoryError at its share of the pod's 256 MiB, not the
    # kernel's kill (which on cgroup v2 nodes would end the whole container).
    assert "MemoryError at its limit of" in records["allocate"]["error"]
    assert {(r["state"], r["attempts"]) for i, r in records.items() if i not in POISON} == {
        ("done", 1)
    }
