"""`helm lint --strict`, and every rendered object against the Kubernetes API schemas.

kubernetes-validate ships the OpenAPI-derived JSON schemas of each Kubernetes minor, so this
runs offline. Strict mode rejects unknown fields, which is what catches a mistyped key. The
Prometheus Operator's kinds are checked against its CRDs instead (tests/chart/crds.py).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from kubernetes_validate.utils import latest_version  # type: ignore[import-untyped]

from tests.chart.crds import CrdValidator
from tests.chart.helmlib import CHART, MONITORING_APIS, Helm, Manifest

OLDEST = "1.31.0"  # the chart's kubeVersion floor
NEWEST = latest_version()

COMBINATIONS: dict[str, Manifest] = {
    "defaults": {},
    "items": {"items": ["apple", {"src": "a", "n": 1}]},
    "items-file": {"itemsFile": "a\nb\n"},
    "range": {"itemRange": {"start": 0, "end": 1000000, "step": 3}},
    "items-url": {
        "itemsUrl": "s3://bucket/items.jsonl",
        "seed": {
            "serviceAccount": {
                "create": True,
                "annotations": {"iam.gke.io/gcp-service-account": "x"},
            },
            "extraEnvFrom": [{"secretRef": {"name": "s3"}}],
            "extraEnv": [{"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"}],
            "extraVolumes": [{"name": "aws", "secret": {"secretName": "aws"}}],
            "extraVolumeMounts": [{"name": "aws", "mountPath": "/etc/aws"}],
        },
    },
    "items-list": {"itemsList": "gs://bucket/in/*.png", "seed": {"serviceAccount": {"name": "r"}}},
    "command": {"worker": {"handler": "command", "command": ["echo", "{{ item }}"], "shell": True}},
    "python": {"worker": {"handler": "python", "python": "pkg.mod:fn", "failOnDead": True}},
    "persistence": {"redis": {"persistence": {"enabled": True, "storageClass": "standard"}}},
    "existing-secret": {"auth": {"existingSecret": "s"}, "networkPolicy": {"enabled": False}},
    "no-auth": {"auth": {"enabled": False}},
    "external": {
        "redis": {"enabled": False},
        "externalRedis": {"host": "r", "tls": True, "existingSecret": "s"},
    },
    "external-tls-ca": {
        "redis": {"enabled": False},
        "externalRedis": {"url": "rediss://r:6380/0", "tlsCaSecret": "ca", "existingSecret": "s"},
    },
    "no-seed": {"seed": {"enabled": False}, "runId": "Batch_7.x"},
    "autoscale": {"worker": {"autoscale": {"enabled": True, "itemsPerWorker": 100}}},
    "everything": {
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount": {"annotations": {"a": "b"}},
        "worker": {
            "activeDeadlineSeconds": 3600,
            "ttlSecondsAfterFinished": 0,
            "terminationGracePeriodSeconds": 60,
            "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}},
            "extraEnv": [{"name": "A", "value": "b"}],
            "extraEnvFrom": [{"configMapRef": {"name": "c"}}],
            "extraVolumes": [{"name": "d", "emptyDir": {}}],
            "extraVolumeMounts": [{"name": "d", "mountPath": "/d"}],
            "nodeSelector": {"pool": "batch"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "worker"}},
                }
            ],
            "priorityClassName": "low",
            "podAnnotations": {"x": "y"},
        },
        "seed": {"ttlSecondsAfterFinished": 60},
        "redis": {
            "extraArgs": ["--maxmemory", "1gb"],
            "service": {"type": "NodePort", "annotations": {"a": "b"}},
            "priorityClassName": "high",
        },
        "networkPolicy": {"extraIngressFrom": [{"namespaceSelector": {}}]},
    },
    "metrics": {
        "metrics": {
            "enabled": True,
            "serviceMonitor": {"enabled": True, "additionalLabels": {"release": "kps"}},
            "prometheusRule": {"enabled": True, "alertLabels": {"team": "batch"}},
            "dashboard": {"enabled": True, "namespace": "grafana", "annotations": {"f": "wq"}},
        }
    },
    "metrics-everything": {
        "imagePullSecrets": [{"name": "regcred"}],
        "redis": {"enabled": False},
        "externalRedis": {"url": "rediss://r:6380/0", "tlsCaSecret": "ca", "cluster": True},
        "metrics": {
            "enabled": True,
            "port": 8080,
            "service": {"annotations": {"prometheus.io/scrape": "true"}},
            "networkPolicy": {"from": [{"namespaceSelector": {}}]},
            "serviceMonitor": {"enabled": True, "interval": "", "scrapeTimeout": ""},
            "prometheusRule": {"enabled": True, "stalledWindow": "1h30m", "runLostFor": "0"},
            "nodeSelector": {"pool": "infra"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "affinity": {"podAntiAffinity": {}},
            "priorityClassName": "high",
            "podAnnotations": {"x": "y"},
            "podLabels": {"team": "x"},
        },
    },
}


def kinds_and_names(docs: list[Manifest]) -> list[str]:
    return [f"{d['kind']}/{d['metadata']['name']}" for d in docs]


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_manifests_match_kubernetes_api(
    helm: Helm, crds: CrdValidator, name: str, version: str
) -> None:
    rendered = helm.render(COMBINATIONS[name], api_versions=MONITORING_APIS)
    assert rendered.manifests, "nothing rendered"
    failures = []
    for doc in rendered.manifests:
        try:
            if crds.knows(doc):
                crds.validate(doc)
            else:
                kubernetes_validate.validate(doc, version, strict=True)
        except jsonschema.ValidationError as e:
            failures.append(
                f"{doc['kind']}/{doc['metadata']['name']}: {e.message} at {list(e.path)}"
            )
    assert not failures, "\n".join(failures)


def test_monitoring_kinds_are_validated(helm: Helm, crds: CrdValidator) -> None:
    """The metrics combinations render the CRD kinds, so the test above checks them."""
    kinds = helm.render(COMBINATIONS["metrics"], api_versions=MONITORING_APIS).kinds()
    assert {"ServiceMonitor", "PrometheusRule"} <= set(kinds)


def test_crd_validator_rejects_a_broken_resource(helm: Helm, crds: CrdValidator) -> None:
    """Strict like kubernetes-validate: an unknown field or a wrong type is refused."""
    rendered = helm.render(COMBINATIONS["metrics"], api_versions=MONITORING_APIS)
    monitor = rendered.one("ServiceMonitor")
    crds.validate(monitor)
    typo: dict[str, Any] = copy.deepcopy(monitor)
    typo["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        crds.validate(typo)
    rule: dict[str, Any] = copy.deepcopy(rendered.one("PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    with pytest.raises(jsonschema.ValidationError):
        crds.validate(rule)
    nameless: dict[str, Any] = copy.deepcopy(rendered.one("PrometheusRule"))
    del nameless["spec"]["groups"][0]["name"]
    with pytest.raises(jsonschema.ValidationError, match="'name' is a required property"):
        crds.validate(nameless)


def test_newest_schema_is_newer_than_oldest() -> None:
    assert tuple(int(p) for p in NEWEST.split(".")[:2]) > (1, 31)


def test_validator_rejects_a_broken_manifest(helm: Helm) -> None:
    """The check above can fail: a mistyped field or a wrong type is refused."""
    job = helm.render().one("Job", "worker")
    typo: dict[str, Any] = copy.deepcopy(job)
    typo["spec"]["paralelism"] = typo["spec"].pop("parallelism")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, OLDEST, strict=True)
    wrong: dict[str, Any] = copy.deepcopy(job)
    wrong["spec"]["parallelism"] = "3"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, NEWEST, strict=True)


@pytest.mark.parametrize(
    "name",
    ["defaults", "external", "external-tls-ca", "everything", "metrics-everything", "autoscale"],
)
def test_helm_lint_strict(helm: Helm, name: str) -> None:
    values = helm.values_file(COMBINATIONS[name])
    result = helm.run("lint", "--strict", str(CHART), "-f", str(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout
