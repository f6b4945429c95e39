"""The chart's alerts and the dashboard's queries through promtool, Prometheus' own checker.

bin/promtool (PROMETHEUS_VERSION in the Makefile) parses every expression as Prometheus does,
and `promtool test rules` evaluates the rendered alerts over synthetic series with the real
rule engine (promtool/alerts.test.yaml says which alert fires when).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helmlib import CHART, MONITORING_APIS, REPO, Helm, Manifest

ALERT_TESTS = Path(__file__).parent / "promtool" / "alerts.test.yaml"
RULE_ON: Manifest = {"metrics": {"enabled": True, "prometheusRule": {"enabled": True}}}


def promtool_run(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def write_rules(helm: Helm, directory: Path, values: Manifest = RULE_ON) -> Path:
    """The PrometheusRule's spec (its groups) as the rule file Prometheus would load."""
    rule = helm.render(values, api_versions=MONITORING_APIS).one("PrometheusRule")
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False), encoding="utf-8")
    return path


def test_promtool_is_the_pinned_version(promtool: Path, tmp_path: Path) -> None:
    """A stale bin/promtool (the Makefile never rebuilds one) would test another Prometheus."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    [module] = re.findall(r"^PROMETHEUS_VERSION \?= (v0\.3\d\d\.\d+)$", makefile, re.M)
    minor, patch = re.fullmatch(r"v0\.3(\d\d)\.(\d+)", module).groups()  # type: ignore[union-attr]
    release = f"3.{int(minor)}.{patch}"
    out = promtool_run(promtool, "--version", cwd=tmp_path).stdout
    assert f"promtool, version {release} " in out, f"remove bin/promtool and rebuild it: {out}"


@pytest.mark.parametrize(
    "prometheus_rule",
    [
        {},
        {"stalledWindow": "1h30m", "stalledFor": "0s", "deadItemsFor": "0", "runLostFor": "1m"},
        {"alertLabels": {"team": "batch", "severity": "page"}, "stalledWindow": "90s"},
    ],
)
def test_rules_pass_promtool_check(
    helm: Helm, promtool: Path, tmp_path: Path, prometheus_rule: Manifest
) -> None:
    values = {"metrics": {"enabled": True, "prometheusRule": {"enabled": True, **prometheus_rule}}}
    write_rules(helm, tmp_path, values)
    result = promtool_run(
        promtool, "check", "rules", "--lint=all", "--lint-fatal", "rules.yaml", cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout


def test_promtool_check_refuses_a_broken_rule(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    """The check above can fail: a PromQL syntax error is refused."""
    path = write_rules(helm, tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace(" > 0", " >> 0"), encoding="utf-8")
    result = promtool_run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def run_alert_tests(helm: Helm, promtool: Path, directory: Path, values: Manifest) -> str:
    write_rules(helm, directory, values)
    shutil.copy(ALERT_TESTS, directory / ALERT_TESTS.name)
    result = promtool_run(promtool, "test", "rules", ALERT_TESTS.name, cwd=directory)
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def test_alerts_fire_when_they_should(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    out = run_alert_tests(helm, promtool, tmp_path, RULE_ON)
    assert out.startswith("exit 0\n"), out
    assert "SUCCESS" in out


def test_alert_tests_see_a_changed_rule(helm: Helm, promtool: Path, tmp_path: Path) -> None:
    """The unit tests can fail: a longer `for` delays WqRunStalled past the expected time."""
    values = {"metrics": {"enabled": True, "prometheusRule": {"enabled": True, "stalledFor": "6m"}}}
    out = run_alert_tests(helm, promtool, tmp_path, values)
    assert not out.startswith("exit 0\n"), out
    assert "alertname: WqRunStalled, time: 15m" in out


# --- the dashboard's queries ----------------------------------------------------------------


def as_promql(grafana_query: str) -> str:
    """A Grafana query as plain PromQL: `$__rate_interval` a duration, other variables a
    regex (they sit in `=~"..."` matchers), `label_values(selector, label)` its selector."""
    query = re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", grafana_query.strip(), flags=re.S)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: "1m" if m.group(1).startswith("__") else ".*", query)


def test_as_promql() -> None:
    assert as_promql('rate(x{run=~"$run"}[$__rate_interval])') == 'rate(x{run=~".*"}[1m])'
    assert as_promql('label_values(x{a=~"${ns}"}, job)') == 'x{a=~".*"}'


def test_dashboard_queries_parse(promtool: Path, tmp_path: Path) -> None:
    dashboard: Any = json.loads((CHART / "dashboards" / "wq.json").read_text(encoding="utf-8"))
    records = [
        {"record": f"wq_dashboard:panel_{p['id']}_{t['refId']}", "expr": as_promql(t["expr"])}
        for p in dashboard["panels"]
        for t in p["targets"]
    ]
    records += [
        {"record": f"wq_dashboard:variable_{v['name']}", "expr": as_promql(v["query"]["query"])}
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]
    groups = {"groups": [{"name": "dashboard", "rules": records}]}
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump(groups), encoding="utf-8")
    result = promtool_run(promtool, "check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(records)} rules found" in result.stdout
