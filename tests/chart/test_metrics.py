"""The metrics exporter, its ServiceMonitor, alerts and Grafana dashboard, as rendered.

promtool's checks of the alerts and the dashboard's queries are in test_alerts.py.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest
import yaml

from tests.chart.helmlib import CHART, MONITORING_APIS, Helm, Manifest, Rendered
from tests.chart.test_render import (
    COMMON_LABELS,
    TLS_CA,
    assert_ca_mounted,
    container,
    env,
    matches,
    pod_labels,
    pod_spec,
    workloads,
)
from tests.metric_names import ITEM_STATES, METRICS

ON = {"metrics": {"enabled": True}}
EVERYTHING_ON: Manifest = {
    "metrics": {
        "enabled": True,
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    }
}
DASHBOARD = CHART / "dashboards" / "wq.json"


def sample_names() -> set[str]:
    """Names of the series the contract's families expose (a histogram has three)."""
    names = set()
    for name, kind in METRICS.items():
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        names |= {name + suffix for suffix in suffixes}
    return names


def exporter(r: Rendered) -> Manifest:
    return r.one("Deployment", "exporter")


def rules(r: Rendered) -> dict[str, Manifest]:
    [group] = r.one("PrometheusRule")["spec"]["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


# --- off by default -------------------------------------------------------------------------


def test_metrics_are_off_by_default(helm: Helm) -> None:
    r = helm.render(api_versions=MONITORING_APIS)
    names = {(m["kind"], m["metadata"]["name"]) for m in r.manifests}
    assert not [n for n in names if "exporter" in n[1] or "dashboard" in n[1]]
    assert {"ServiceMonitor", "PrometheusRule"}.isdisjoint(r.kinds())


def test_monitoring_objects_need_their_switches(helm: Helm) -> None:
    r = helm.render(ON, api_versions=MONITORING_APIS)
    assert exporter(r)
    assert r.one("Service", "exporter")
    assert {"ServiceMonitor", "PrometheusRule"}.isdisjoint(r.kinds())
    assert [m["metadata"]["name"] for m in r.all("ConfigMap")] == ["wq-1-items"]


# --- the exporter ---------------------------------------------------------------------------


def test_exporter_deployment(helm: Helm) -> None:
    dep = exporter(helm.render(ON))
    assert dep["metadata"]["name"] == "wq-exporter"
    assert dep["spec"]["replicas"] == 1
    c = container(dep)
    assert c["name"] == "exporter"
    assert c["image"] == "wq:0.1.0"  # the worker image: `wq exporter` is part of the CLI
    assert c["command"] == ["wq"]
    assert c["args"] == ["exporter", "--port", "9899", "--address", "0.0.0.0"]
    assert c["ports"] == [{"name": "metrics", "containerPort": 9899, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert c["readinessProbe"]["periodSeconds"] == 10
    assert c["livenessProbe"]["failureThreshold"] == 6
    assert c["resources"] == {
        "requests": {"cpu": "20m", "memory": "64Mi"},
        "limits": {"memory": "256Mi"},
    }


def test_the_web_page_is_off_by_default_and_on_with_its_value(helm: Helm) -> None:
    """metrics.ui.enabled passes --ui: the page on the metrics port, which the Service, the
    probes and the NetworkPolicy already name, so nothing else changes."""
    off = helm.render(ON)
    on = helm.render({"metrics": {"enabled": True, "ui": {"enabled": True}}})
    assert "--ui" not in container(exporter(off))["args"]
    assert container(exporter(on))["args"] == [
        "exporter",
        "--port",
        "9899",
        "--address",
        "0.0.0.0",
        "--ui",
    ]
    for kind in ("Service", "NetworkPolicy"):
        assert on.one(kind, "exporter") == off.one(kind, "exporter")
    on_c, off_c = container(exporter(on)), container(exporter(off))
    assert {k: v for k, v in on_c.items() if k != "args"} == {
        k: v for k, v in off_c.items() if k != "args"
    }
    [rule] = on.one("NetworkPolicy", "exporter")["spec"]["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert on_c["ports"][0]["name"] == "metrics"


def test_exporter_reads_every_run_so_it_gets_no_run_id(helm: Helm) -> None:
    r = helm.render(ON)
    e = env(exporter(r))
    assert "WQ_RUN" not in e
    assert e == {
        "WQ_REDIS_URL": "redis://wq-redis:6379/0",
        "WQ_REDIS_PASSWORD": {"secretKeyRef": {"name": "wq-redis", "key": "redis-password"}},
    }
    # The split left the pods of one run as they were.
    for obj in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod")):
        assert env(obj)["WQ_RUN"] == "wq-1"


def test_exporter_reaches_an_external_redis_like_the_workers(helm: Helm) -> None:
    values = {**TLS_CA, "externalRedis": {**TLS_CA["externalRedis"], "cluster": True}}
    r = helm.render({**values, **ON})
    dep = exporter(r)
    e = env(dep)
    assert e["WQ_REDIS_URL"] == "rediss://redis.infra:6379/0"
    assert e["WQ_REDIS_CLUSTER"] == "true"
    assert "WQ_RUN" not in e
    assert_ca_mounted(pod_spec(dep), container(dep))
    worker = env(r.one("Job", "worker"))
    assert {k: worker[k] for k in e} == e


@pytest.mark.parametrize("values", [ON, {**TLS_CA, **ON}])
def test_exporter_pod_is_locked_down(helm: Helm, values: Manifest) -> None:
    r = helm.render(values)
    dep = exporter(r)
    spec = pod_spec(dep)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert spec["securityContext"] == defaults["podSecurityContext"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["serviceAccountName"] == r.one("ServiceAccount")["metadata"]["name"]
    c = container(dep)
    assert c["securityContext"] == defaults["securityContext"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}
    assert c["resources"]["limits"]["memory"]


def test_exporter_port_and_pod_settings_follow_values(helm: Helm) -> None:
    values = {
        "imagePullSecrets": [{"name": "regcred"}],
        "image": {"repository": "registry.local/wq", "tag": "dev"},
        "metrics": {
            "enabled": True,
            "port": 8080,
            "nodeSelector": {"pool": "infra"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "priorityClassName": "high",
            "podAnnotations": {"a": "b"},
            "podLabels": {"team": "x"},
            "service": {"annotations": {"prometheus.io/scrape": "true"}},
        },
    }
    r = helm.render(values)
    dep = exporter(r)
    c = container(dep)
    assert c["image"] == "registry.local/wq:dev"
    assert c["args"] == ["exporter", "--port", "8080", "--address", "0.0.0.0"]
    assert c["ports"][0]["containerPort"] == 8080
    spec = pod_spec(dep)
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["nodeSelector"] == {"pool": "infra"}
    assert spec["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert spec["priorityClassName"] == "high"
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    assert pod_labels(dep)["team"] == "x"
    assert pod_labels(dep)["app.kubernetes.io/component"] == "exporter"
    svc = r.one("Service", "exporter")
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert svc["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}


def test_exporter_service_selects_the_exporter_only(helm: Helm) -> None:
    r = helm.render(ON)
    svc = r.one("Service", "exporter")
    assert svc["metadata"]["name"] == "wq-exporter"
    assert svc["spec"]["type"] == "ClusterIP"
    selector = {"matchLabels": svc["spec"]["selector"]}
    assert matches(selector, pod_labels(exporter(r)))
    for other in workloads(r):
        if other is not exporter(r):
            assert not matches(selector, pod_labels(other)), other["metadata"]["name"]
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 9899, "targetPort": "metrics", "protocol": "TCP"}
    ]


def test_long_release_names_give_valid_exporter_names(helm: Helm) -> None:
    r = helm.render(EVERYTHING_ON, release="r" * 53, api_versions=MONITORING_APIS)
    for m in r.manifests:
        assert len(m["metadata"]["name"]) <= 63, m["metadata"]["name"]
    assert exporter(r)["metadata"]["name"].endswith("-exporter")


# --- NetworkPolicy --------------------------------------------------------------------------


def test_redis_admits_the_exporter(helm: Helm) -> None:
    r = helm.render(ON)
    redis_np = next(n for n in r.all("NetworkPolicy") if n["metadata"]["name"] == "wq-redis")
    [peer] = redis_np["spec"]["ingress"][0]["from"]
    assert matches(peer["podSelector"], pod_labels(exporter(r)))


def test_exporter_network_policy_admits_the_metrics_port_only(helm: Helm) -> None:
    r = helm.render(ON)
    np = r.one("NetworkPolicy", "exporter")
    assert np["metadata"]["name"] == "wq-exporter"
    assert matches(np["spec"]["podSelector"], pod_labels(exporter(r)))
    assert not matches(np["spec"]["podSelector"], pod_labels(r.one("Deployment", "redis")))
    # Ingress only, as the Redis policy: the exporter's egress is not restricted.
    assert np["spec"]["policyTypes"] == ["Ingress"]
    # No `from`: any source, but only on the metrics port.
    assert np["spec"]["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]


def test_exporter_network_policy_peers_and_off_switch(helm: Helm) -> None:
    peers = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {"ipBlock": {"cidr": "10.0.0.0/8"}},
    ]
    np = helm.render({"metrics": {"enabled": True, "networkPolicy": {"from": peers}}}).one(
        "NetworkPolicy", "exporter"
    )
    assert np["spec"]["ingress"] == [
        {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": peers}
    ]
    r = helm.render({**ON, "networkPolicy": {"enabled": False}})
    assert r.all("NetworkPolicy") == []


# --- ServiceMonitor -------------------------------------------------------------------------

SM_ON: Manifest = {"metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}}


def test_service_monitor_only_where_the_crd_is(helm: Helm) -> None:
    assert helm.render(SM_ON).all("ServiceMonitor") == []
    other_api = ["monitoring.coreos.com/v1/PrometheusRule"]
    assert helm.render(SM_ON, api_versions=other_api).all("ServiceMonitor") == []
    apis = ["monitoring.coreos.com/v1/ServiceMonitor"]
    assert len(helm.render(SM_ON, api_versions=apis).all("ServiceMonitor")) == 1


def test_service_monitor_scrapes_the_exporter_service(helm: Helm) -> None:
    r = helm.render(SM_ON, api_versions=MONITORING_APIS)
    sm = r.one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["name"] == "wq-exporter"
    svc = r.one("Service", "exporter")
    # A ServiceMonitor selects Services by their labels, then scrapes their endpoints.
    assert matches(sm["spec"]["selector"], svc["metadata"]["labels"])
    assert not matches(sm["spec"]["selector"], r.one("Service", "redis")["metadata"]["labels"])
    assert sm["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    # No jobLabel and no namespaceSelector: job is the Service's name, in the release namespace.
    assert "jobLabel" not in sm["spec"]
    assert "namespaceSelector" not in sm["spec"]


def test_service_monitor_values(helm: Helm) -> None:
    values = {
        "metrics": {
            "enabled": True,
            "serviceMonitor": {
                "enabled": True,
                "interval": "1m",
                "scrapeTimeout": "",
                "additionalLabels": {"release": "kube-prometheus-stack"},
            },
        }
    }
    sm = helm.render(values, api_versions=MONITORING_APIS).one("ServiceMonitor")
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "1m"}]
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert COMMON_LABELS.items() <= sm["metadata"]["labels"].items()


# --- PrometheusRule -------------------------------------------------------------------------

RULE_ON: Manifest = {"metrics": {"enabled": True, "prometheusRule": {"enabled": True}}}


def test_prometheus_rule_only_where_the_crd_is(helm: Helm) -> None:
    assert helm.render(RULE_ON).all("PrometheusRule") == []
    other_api = ["monitoring.coreos.com/v1/ServiceMonitor"]
    assert helm.render(RULE_ON, api_versions=other_api).all("PrometheusRule") == []
    apis = ["monitoring.coreos.com/v1/PrometheusRule"]
    assert len(helm.render(RULE_ON, api_versions=apis).all("PrometheusRule")) == 1


def test_alert_expressions(helm: Helm) -> None:
    r = helm.render(RULE_ON, api_versions=MONITORING_APIS)
    assert r.one("PrometheusRule")["metadata"]["name"] == "wq-exporter"
    alerts = rules(r)
    assert list(alerts) == ["WqRunStalled", "WqDeadItems", "WqRunLost"]
    sel = 'job="wq-exporter", namespace="default"'
    by = "max by (namespace, job, run)"
    assert alerts["WqRunStalled"]["expr"] == (
        f'{by} (wq_items{{state="pending", {sel}}}) > 0\n'
        "and\n"
        f"{by} (increase(wq_items_completed_total{{{sel}}}[10m])) == 0\n"
        "and\n"
        f"{by} (wq_items_completed_total{{{sel}}} offset 10m)"
    )
    assert alerts["WqDeadItems"]["expr"] == f'{by} (wq_items{{state="dead", {sel}}}) > 0'
    assert alerts["WqRunLost"]["expr"] == f"{by} (wq_run_lost{{{sel}}}) == 1"
    assert {name: a["for"] for name, a in alerts.items()} == {
        "WqRunStalled": "5m",
        "WqDeadItems": "1m",
        "WqRunLost": "0s",
    }
    assert {name: a["labels"] for name, a in alerts.items()} == {
        "WqRunStalled": {"severity": "warning"},
        "WqDeadItems": {"severity": "warning"},
        "WqRunLost": {"severity": "critical"},
    }


def test_alert_annotations_are_prometheus_templates(helm: Helm) -> None:
    """Helm must leave `{{ $labels.run }}` for Prometheus to fill in."""
    alerts = rules(helm.render(RULE_ON, api_versions=MONITORING_APIS))
    assert alerts["WqRunStalled"]["annotations"]["summary"] == "wq run {{ $labels.run }} is stalled"
    assert alerts["WqDeadItems"]["annotations"]["summary"] == (
        "wq run {{ $labels.run }} has dead items"
    )
    assert alerts["WqRunLost"]["annotations"]["summary"] == "wq run {{ $labels.run }} was lost"
    stalled = alerts["WqRunStalled"]["annotations"]["description"]
    assert stalled.startswith(
        "Run {{ $labels.run }} (namespace {{ $labels.namespace }}) has {{ $value }} pending item(s)"
        "\nand completed none in the last 10m."
    )
    assert "kubectl -n default get pods -l app.kubernetes.io/instance=wq," in stalled
    assert "wq purge --run {{ $labels.run }} --yes" in stalled
    dead = alerts["WqDeadItems"]["annotations"]["description"]
    assert "wq retry-dead --run {{ $labels.run }}" in dead
    for alert in alerts.values():
        for text in alert["annotations"].values():
            # Every Prometheus template action is whole; no Helm leftovers.
            assert text.count("{{") == text.count("}}")
            assert all(a.strip().startswith("$") for a in re.findall(r"{{(.*?)}}", text)), text


def test_alerts_see_only_this_releases_exporter(helm: Helm) -> None:
    r = helm.render(RULE_ON, release="batch", api_versions=MONITORING_APIS)
    r2 = helm.render(
        RULE_ON, release="batch", extra=["--namespace", "jobs"], api_versions=MONITORING_APIS
    )
    for rendered, namespace in ((r, "default"), (r2, "jobs")):
        for alert in rules(rendered).values():
            selectors = re.findall(r"wq_\w+\{([^}]*)\}", alert["expr"])
            assert selectors
            for selector in selectors:
                assert f'job="batch-wq-exporter", namespace="{namespace}"' in selector
        assert rendered.one("Service", "exporter")["metadata"]["name"] == "batch-wq-exporter"


def test_alert_values(helm: Helm) -> None:
    values = {
        "metrics": {
            "enabled": True,
            "prometheusRule": {
                "enabled": True,
                "additionalLabels": {"release": "kube-prometheus-stack"},
                "alertLabels": {"team": "batch", "severity": "page"},
                "stalledWindow": "1h",
                "stalledFor": "15m",
                "deadItemsFor": "0s",
                "runLostFor": "2m",
            },
        }
    }
    r = helm.render(values, api_versions=MONITORING_APIS)
    assert r.one("PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = rules(r)
    assert "[1h]" in alerts["WqRunStalled"]["expr"]
    assert "offset 1h" in alerts["WqRunStalled"]["expr"]
    assert "in the last 1h." in alerts["WqRunStalled"]["annotations"]["description"]
    assert [a["for"] for a in alerts.values()] == ["15m", "0s", "2m"]
    for alert in alerts.values():
        assert alert["labels"] == {"team": "batch", "severity": "page"}


# --- Grafana dashboard ----------------------------------------------------------------------


def dashboard_json() -> Any:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panel_exprs(dashboard: Any) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def variable_queries(dashboard: Any) -> list[str]:
    return [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]


def test_dashboard_configmap(helm: Helm) -> None:
    r = helm.render({"metrics": {"dashboard": {"enabled": True}}})
    cm = r.one("ConfigMap", "dashboard")
    assert cm["metadata"]["name"] == "wq-dashboard"
    assert "namespace" not in cm["metadata"]  # the release's
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert COMMON_LABELS.items() <= cm["metadata"]["labels"].items()
    assert list(cm["data"]) == ["wq.json"]
    assert json.loads(cm["data"]["wq.json"]) == dashboard_json()
    # Needs no exporter of its own: it shows every exporter Prometheus scrapes.
    assert r.all("Deployment") == [r.one("Deployment", "redis")]


def test_dashboard_sidecar_label_namespace_and_annotations(helm: Helm) -> None:
    values = {
        "metrics": {
            "dashboard": {
                "enabled": True,
                "labelKey": "grafana.example.com/dashboard",
                "labelValue": "wq",
                "namespace": "grafana",
                "annotations": {"grafana_folder": "Batch"},
            }
        }
    }
    cm = helm.render(values).one("ConfigMap", "dashboard")
    assert cm["metadata"]["namespace"] == "grafana"
    assert cm["metadata"]["labels"]["grafana.example.com/dashboard"] == "wq"
    assert "grafana_dashboard" not in cm["metadata"]["labels"]
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Batch"}


def test_dashboard_is_a_grafana_dashboard() -> None:
    d = dashboard_json()
    assert isinstance(d["schemaVersion"], int)
    assert d["schemaVersion"] >= 36  # datasource objects with uid, ${datasource} in panels
    assert d["title"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d["uid"])
    assert "id" not in d or d["id"] is None  # an id would clash with Grafana's own
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "job", "run"} <= set(variables)
    for name in ("namespace", "job", "run"):
        v = variables[name]
        assert v["type"] == "query"
        assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        # "All" must match series whatever their labels: a regex, not Grafana's value list.
        assert v["includeAll"] is True
        assert v["allValue"] == ".*"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in d["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        grid = p["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"}
        assert all(isinstance(v, int) and v >= 0 for v in grid.values())
        assert grid["x"] + grid["w"] <= 24, p["title"]  # Grafana's grid is 24 wide
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"]


def test_dashboard_panels(helm: Helm) -> None:
    panels = {p["title"]: p for p in dashboard_json()["panels"]}
    assert {
        "Progress",
        "Processing rate",
        "ETA",
        "Item duration",
        "Dead items",
        "In flight",
    } <= set(panels)

    def exprs(title: str) -> str:
        return "\n".join(t["expr"] for t in panels[title]["targets"])

    assert 'wq_items{state="done"' in exprs("Progress")
    assert "wq_run_items{" in exprs("Progress")
    assert "rate(wq_items_completed_total{" in exprs("Processing rate")
    assert "rate(wq_items_completed_total{" in exprs("ETA")
    assert 'wq_items{state="dead"' in exprs("Dead items")
    assert 'wq_items{state="in_flight"' in exprs("In flight")
    quantiles = re.findall(
        r"histogram_quantile\((0\.\d+), sum by \(le, [^)]*\) "
        r"\(rate\(wq_item_duration_seconds_bucket\{",
        exprs("Item duration"),
    )
    assert quantiles == ["0.5", "0.9", "0.99"]
    for title, panel in panels.items():
        for t in panel["targets"]:
            if title != "Redis up":
                assert 'run=~"$run"' in t["expr"], title
            assert 'namespace=~"$namespace", job=~"$job"' in t["expr"], title


# --- one metric list ------------------------------------------------------------------------

# PromQL words that are not metric names: keywords, aggregations, functions (followed by "(").
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "offset", "bool"}
PROMQL_WORDS |= {"group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression or a Grafana variable query.

    Strings, label matchers, ranges and grouping label lists are dropped first; what is left
    are names, numbers, operators and calls. A name followed by `(` is a function. Grafana's
    `label_values(metric, label)` names a label last.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r",\s*\w+\s*\)\s*$", ")", text) if expr.startswith("label_values(") else text
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    groupings = r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    text = re.sub(groupings, " ", text)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in PROMQL_WORDS:
            names.add(name)
    return names


def test_metric_name_parser() -> None:
    expr = (
        'sum by (namespace, run) (rate(wq_a_total{state="x", job=~"$job"}[5m])) '
        "/ on (run) group_left wq_b > 0 and max(wq_c offset 10m) unless up == bool 1e3"
    )
    assert metric_names(expr) == {"wq_a_total", "wq_b", "wq_c", "up"}
    assert metric_names('label_values(wq_redis_up{namespace=~"$n"}, job)') == {"wq_redis_up"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(x_bucket[1m])))") == {
        "x_bucket"
    }


def test_dashboard_and_alerts_use_only_contract_metrics(helm: Helm) -> None:
    d = dashboard_json()
    exprs = panel_exprs(d) + variable_queries(d)
    r = helm.render(RULE_ON, api_versions=MONITORING_APIS)
    exprs += [cast(str, rule["expr"]) for rule in rules(r).values()]
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        used |= names
    assert used <= sample_names(), used - sample_names()
    # The dashboard and the alerts between them show every state the contract names.
    states = set(re.findall(r'state=~?"([^"]+)"', "\n".join(exprs)))
    assert {s for group in states for s in group.split("|")} == set(ITEM_STATES)


# --- labels and NOTES -----------------------------------------------------------------------


def test_labels_of_the_monitoring_objects(helm: Helm) -> None:
    r = helm.render(EVERYTHING_ON, api_versions=MONITORING_APIS)
    components = {}
    for obj in r.manifests:
        labels = obj["metadata"]["labels"]
        assert COMMON_LABELS.items() <= labels.items(), obj["metadata"]["name"]
        if "exporter" in obj["metadata"]["name"] or "dashboard" in obj["metadata"]["name"]:
            components[obj["kind"]] = labels["app.kubernetes.io/component"]
    assert components == {
        "Deployment": "exporter",
        "Service": "exporter",
        "NetworkPolicy": "exporter",
        "ServiceMonitor": "exporter",
        "PrometheusRule": "exporter",
        "ConfigMap": "dashboard",
    }
    assert COMMON_LABELS.items() <= pod_labels(exporter(r)).items()
