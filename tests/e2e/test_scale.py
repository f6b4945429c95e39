"""`make scale` (c), not part of `make test` or `make e2e` (marked `scale`, not `e2e`): a
10-million-item range run on kind at parallelism 8 runs to Complete within the chart's default
Redis memory. Figures go to $WQ_SCALE_OUT as JSON for bench/scale.py's table: install to
Complete (and of that, install to the first lease), items/s, Redis' peak memory against its
maxmemory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.e2e.checks import assert_clean
from tests.e2e.release import Release, Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.scale, pytest.mark.timeout(3600)]

ITEMS = int(os.environ.get("WQ_SCALE_ITEMS", "10000000"))
PARALLELISM = int(os.environ.get("WQ_SCALE_PARALLELISM", "8"))


def redis_memory(rel: Release) -> dict[str, int]:
    """INFO memory of the bundled Redis, its integer fields."""
    fields = dict(line.split(":", 1) for line in rel.redis_cli("info", "memory") if ":" in line)
    return {k: int(v) for k, v in fields.items() if v.strip().isdigit()}


def test_range_run_completes_within_the_default_redis_memory(release: Releases) -> None:
    rel = release("scale")
    started = time.monotonic()
    # The demo handler without its sleep: the docs' worker, printing each item, as fast as the
    # queue lets it. Everything else is the chart's defaults (Redis' limits included).
    rel.install(
        {
            "itemRange": {"start": 0, "end": ITEMS},
            "worker": {"parallelism": PARALLELISM, "demoSleep": 0},
        }
    )
    meta = f"wq:{{{rel.run_id()}}}:meta"
    wait_until(
        "the first lease",
        lambda: "".join(rel.redis_cli("HGET", meta, "first_lease_ms", check=False)) or None,
        timeout=600,
        interval=0.5,
    )
    first_lease = time.monotonic() - started
    rel.wait(timeout=3000)
    elapsed = time.monotonic() - started

    status = rel.status()
    assert_clean(status, total=ITEMS)
    memory = redis_memory(rel)
    assert memory["maxmemory"] > 0, "the chart sets maxmemory by default"
    assert memory["used_memory_peak"] < memory["maxmemory"], memory
    restarts = [
        int(s.get("restartCount", 0))
        for pod in rel.kube.items("pod", f"app.kubernetes.io/instance={rel.name}")
        for s in pod["status"].get("containerStatuses", [])
        if s["name"] == "redis"
    ]
    assert restarts == [0], f"Redis restarted (out of memory?): {restarts}"
    figures = {
        "items": ITEMS,
        "parallelism": PARALLELISM,
        "install_to_complete_s": round(elapsed, 1),
        "install_to_first_lease_s": round(first_lease, 1),
        "items_per_s": round(ITEMS / elapsed),
        "redis_peak_mb": round(memory["used_memory_peak"] / 1e6, 1),
        "redis_maxmemory_mb": round(memory["maxmemory"] / 1e6, 1),
        "ok": True,
    }
    print(json.dumps(figures))
    if out := os.environ.get("WQ_SCALE_OUT"):
        Path(out).write_text(json.dumps(figures) + "\n", encoding="utf-8")
