"""Issue 12 on a real cluster: a real Prometheus (bin/prometheus, the pinned build) scrapes the
chart's exporter through a port-forward, with the labels its ServiceMonitor would give, and
evaluates the chart's own alert rules: `done` reaches the run's total, and the stalled-run
alert fires on a run whose workers were scaled to zero, and only on that run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kube import Kube, run, tool
from tests.e2e.prometheus import Prometheus, port_forward, prometheus
from tests.e2e.release import Release, Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ITEMS = 2000
# Short windows, so that the test sees the alert within seconds (the defaults are 10m and 5m).
METRICS = {
    "enabled": True,
    "prometheusRule": {"enabled": True, "stalledWindow": "20s", "stalledFor": "0s"},
}
RULE_API = "monitoring.coreos.com/v1/PrometheusRule"


def alert_rules(rel: Release, values: dict[str, Any]) -> list[Any]:
    """The rule groups of the chart's PrometheusRule for these values (kind has no Prometheus
    Operator: rendered with its API declared, and loaded into our Prometheus as a rule file)."""
    manifests = rel.template(values, "--api-versions", RULE_API)
    (rule,) = [m for m in manifests if m["kind"] == "PrometheusRule"]
    groups: list[Any] = rule["spec"]["groups"]
    return groups


def firing(server: Prometheus, alert: str) -> set[str]:
    """The runs `alert` fires for."""
    query = f'ALERTS{{alertname="{alert}", alertstate="firing"}}'
    return {labels["run"] for labels, _ in server.query(query)}


def test_prometheus_scrapes_runs_and_the_stall_alert_fires(
    release: Releases,
    namespace: Kube,
    tmp_path: Path,
    record_timing: Callable[[str, float], None],
) -> None:
    rel = release("wq-metrics")
    first: dict[str, Any] = {
        "itemRange": {"start": 0, "end": ITEMS},
        "worker": {"parallelism": 2, "demoSleep": 0.005},
        "metrics": METRICS,
    }
    started = time.monotonic()
    rel.install(first)
    exporter = f"{rel.fullname}-exporter"
    namespace("rollout", "status", f"deployment/{exporter}", "--timeout=180s")
    with port_forward(namespace, f"svc/{exporter}", 9899, tmp_path / "pf.log") as port:
        # The exposition passes Prometheus' own linter.
        exposition = run(["curl", "-fsS", f"http://127.0.0.1:{port}/metrics"]).stdout
        checked = run([tool("promtool"), "check", "metrics"], stdin=exposition, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        # What a ServiceMonitor without jobLabel gives: job = the Service's name, namespace.
        labels = {"job": exporter, "namespace": namespace.namespace, "service": exporter}
        with prometheus(tmp_path / "prom", port, labels, alert_rules(rel, first)) as server:
            run1 = rel.run_id()
            done = f'wq_items{{run="{run1}", state="done"}}'
            wait_until(
                lambda: f"{done} = {ITEMS} in Prometheus (now {server.value(done)})",
                lambda: server.value(done) == ITEMS,
                timeout=300,
                interval=1,
            )
            record_timing(
                f"issue 12: {ITEMS} items, install to done={ITEMS} in Prometheus",
                time.monotonic() - started,
            )
            rel.wait()
            assert server.value(f'wq_run_drained{{run="{run1}"}}') == 1
            assert server.value(f'wq_items{{run="{run1}", state="pending"}}') == 0
            assert server.value(f'wq_run_items{{run="{run1}"}}') == ITEMS
            # Every execution was timed: the histogram's count is the executions counter.
            executions = f'wq_executions_total{{run="{run1}"}}'
            count = f'wq_item_duration_seconds_count{{run="{run1}"}}'
            wait_until(
                lambda: (
                    f"{count} = {executions} ({server.value(count)}, {server.value(executions)})"
                ),
                lambda: server.value(count) == server.value(executions) == ITEMS,
                timeout=60,
                interval=1,
            )
            assert server.value("wq_redis_up") == 1

            # A second run with slow items, whose workers are scaled to zero once it started.
            second = {
                "itemRange": {"start": 0, "end": 200},
                "worker": {"parallelism": 1, "demoSleep": 0.5},
                "metrics": METRICS,
            }
            rel.upgrade(second)
            run2 = rel.run_id()
            done2 = f'wq_items_completed_total{{run="{run2}"}}'
            wait_until(
                f"run {run2} completing items",
                lambda: (server.value(done2) or 0) >= 2,
                timeout=180,
                interval=1,
            )
            stalled_at = time.monotonic()
            namespace(
                "patch", "job", rel.worker_job(), "--type=merge", "-p", '{"spec":{"parallelism":0}}'
            )
            wait_until(
                lambda: (
                    f"WqRunStalled firing for {run2} (firing: {firing(server, 'WqRunStalled')})"
                ),
                lambda: run2 in firing(server, "WqRunStalled"),
                timeout=180,
                interval=1,
            )
            record_timing(
                "issue 12: workers scaled to 0 until WqRunStalled fired (window 20s)",
                time.monotonic() - stalled_at,
            )
            assert firing(server, "WqRunStalled") == {run2}, "the drained run never stalls"
            assert server.value(f'wq_items{{run="{run2}", state="pending"}}') > 0
            assert not firing(server, "WqDeadItems")
            assert not firing(server, "WqRunLost")
