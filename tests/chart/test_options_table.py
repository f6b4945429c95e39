"""The worker Job's environment and values.yaml's worker keys match wq's option table
(wq.base.options), so a setting added in one place and forgotten in another fails here."""

from __future__ import annotations

import json
from typing import Any

import click
import yaml

from tests.chart.helmlib import CHART, Helm, Manifest
from wq.base.options import ConnectionConfig, WorkerConfig
from wq.base.settings import Number, settings

# Keys of `worker` that shape the Job and its pods rather than the `wq work` process.
POD_KEYS = {
    "parallelism",
    "backoffLimit",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "terminationGracePeriodSeconds",
    "resources",
    "extraEnv",
    "extraEnvFrom",
    "extraVolumes",
    "extraVolumeMounts",
    "nodeSelector",
    "tolerations",
    "affinity",
    "topologySpreadConstraints",
    "priorityClassName",
    "podAnnotations",
    "podLabels",
    "autoscale",  # `wq autoscale`'s settings: tests/chart/test_autoscale.py
}

# One render per handler, with every optional setting switched on.
HANDLER_VALUES: list[Manifest] = [
    {"worker": {"handler": "demo"}},
    {
        "worker": {
            "handler": "command",
            "command": ["echo", "{{ item }}"],
            "shell": True,
            "captureStdout": True,
            "failOnDead": True,
        }
    },
    {"worker": {"handler": "python", "python": "pkg.mod:func"}},
]

TABLE = [s for cls in (WorkerConfig, ConnectionConfig) for _, s in settings(cls)]


def worker_env_names(helm: Helm, values: Manifest) -> set[str]:
    job = helm.render(values).one("Job", "worker")
    [container] = job["spec"]["template"]["spec"]["containers"]
    return {e["name"] for e in container["env"]}


def test_every_variable_the_worker_job_sets_is_a_setting(helm: Helm) -> None:
    known = {s.env for s in TABLE}
    for values in HANDLER_VALUES:
        assert worker_env_names(helm, values) - known == set(), values


def test_every_chart_value_setting_reaches_the_worker(helm: Helm) -> None:
    rendered: set[str] = set()
    for values in HANDLER_VALUES:
        rendered |= worker_env_names(helm, values)
    wanted = {s.env for s in TABLE if s.value}
    assert wanted - rendered == set()


def same_default(chart: Any, table: Any) -> bool:
    if isinstance(table, tuple):
        return list(table) == chart
    if isinstance(table, float):
        return isinstance(chart, int | float) and float(chart) == table
    return bool(chart == table)


def test_values_yaml_worker_keys_are_the_table_and_pod_keys() -> None:
    worker = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))["worker"]
    table = {
        s.value: f.default for cls in (WorkerConfig, ConnectionConfig) for f, s in settings(cls)
    }
    table.pop(None, None)
    assert set(worker) - POD_KEYS == set(table)
    differing = {k: (worker[k], d) for k, d in table.items() if not same_default(worker[k], d)}
    assert differing == {}, "values.yaml and wq.base.options disagree on defaults"


def test_schema_bounds_are_the_table_bounds() -> None:
    """values.schema.json rejects at install what `wq work` would reject in the pod."""
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    props = schema["properties"]["worker"]["properties"]
    checked = 0
    for _, s in settings(WorkerConfig) + settings(ConnectionConfig):
        if s.value is None:
            continue
        prop = props[s.value]
        if isinstance(s.type, Number):
            assert (prop.get("minimum"), prop.get("maximum")) == (s.type.low, s.type.high), s.value
            if s.type.integer or s.value in ("seedWait", "redisWait"):
                assert prop["type"] == "integer", s.value
            else:  # numbers, or decimals as text (helm --set passes 0.5 as a string)
                assert prop["type"] == ["number", "string"], s.value
            checked += 1
        elif isinstance(s.type, click.Choice):
            assert prop["enum"] == list(s.type.choices), s.value
            checked += 1
    assert checked >= 9  # every numeric and choice setting of the chart


def test_decimal_seconds_can_be_set_on_the_command_line(helm: Helm) -> None:
    """`helm --set worker.demoSleep=0.5` passes the string "0.5"; the chart takes it."""
    job = helm.render(sets=["worker.demoSleep=0.5", "worker.lease=2.5"]).one("Job", "worker")
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["WQ_DEMO_SLEEP"], env["WQ_LEASE"]) == ("0.5", "2.5")
    assert "/worker/lease" in helm.render_error(sets=["worker.lease=soon"])
