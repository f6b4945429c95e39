"""worker.autoscale: the controller Job running `wq autoscale`, its ServiceAccount, Role and
RoleBinding, and the worker Job's starting size; all absent unless enabled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.crds import CrdValidator
from tests.chart.helmlib import CHART, Helm, Manifest, Rendered
from tests.chart.test_reject import SCHEMA, VALIDATION
from tests.chart.test_render import (
    container,
    env,
    matches,
    pod_labels,
    pod_spec,
    render_notes,
    workloads,
)
from wq.base.options import ConnectionConfig, WorkerConfig
from wq.base.settings import Number, setting_of, settings
from wq.scale.autoscale import AutoscaleConfig

ON: Manifest = {"worker": {"autoscale": {"enabled": True}}}
KINDS = ("ServiceAccount", "Role", "RoleBinding")


def autoscaled(helm: Helm, **autoscale: Any) -> Rendered:
    worker = {k: autoscale.pop(k) for k in list(autoscale) if k in ("parallelism", "concurrency")}
    return helm.render({"worker": {**worker, "autoscale": {"enabled": True, **autoscale}}})


def controller(r: Rendered) -> Manifest:
    return r.one("Job", "autoscaler")


def test_absent_unless_enabled(helm: Helm) -> None:
    r = helm.render()
    assert [m for m in r.manifests if m["kind"] in ("Role", "RoleBinding")] == []
    assert len(r.all("ServiceAccount")) == 1  # the wq pods' own
    assert [j["metadata"]["name"] for j in r.all("Job")] == ["wq-1-seed", "wq-1-worker"]
    assert r.one("Job", "worker")["spec"]["parallelism"] == 3


def test_enabled_renders_the_controller_and_its_rbac(helm: Helm) -> None:
    r = helm.render(ON)
    assert {j["metadata"]["name"] for j in r.all("Job")} == {
        "wq-1-seed",
        "wq-1-worker",
        "wq-1-scaler",
    }
    for kind in KINDS:
        obj = r.one(kind, "autoscaler")
        assert obj["metadata"]["name"] == "wq-autoscaler"


def test_role_allows_only_get_and_patch_of_this_runs_worker_job(helm: Helm) -> None:
    r = helm.render({**ON, "runId": "Nightly_7"})
    worker_job = r.one("Job", "worker")["metadata"]["name"]
    assert worker_job == "nightly-7-worker"
    assert r.one("Role", "autoscaler")["rules"] == [
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "resourceNames": [worker_job],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    assert container(controller(r))["args"] == ["autoscale", "--job", worker_job]


def test_role_binding_grants_the_role_to_the_controllers_account_only(helm: Helm) -> None:
    r = helm.render(ON)
    binding = r.one("RoleBinding", "autoscaler")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "wq-autoscaler",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "wq-autoscaler", "namespace": "default"}
    ]
    assert pod_spec(controller(r))["serviceAccountName"] == "wq-autoscaler"
    for obj in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod", "test")):
        assert pod_spec(obj)["serviceAccountName"] == "wq"


def test_only_the_controller_pod_gets_a_token(helm: Helm) -> None:
    r = helm.render(ON)
    assert r.one("ServiceAccount", "autoscaler")["automountServiceAccountToken"] is False
    for obj in workloads(r):
        wanted = obj["metadata"]["name"] == "wq-1-scaler"
        assert pod_spec(obj)["automountServiceAccountToken"] is wanted, obj["metadata"]["name"]


def test_controller_pod_is_locked_down_like_the_others(helm: Helm) -> None:
    r = helm.render(ON)
    job = controller(r)
    spec = pod_spec(job)
    worker = pod_spec(r.one("Job", "worker"))
    assert spec["securityContext"] == worker["securityContext"]
    assert container(job)["securityContext"] == container(r.one("Job", "worker"))["securityContext"]
    assert spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never"
    assert {"name": "tmp", "mountPath": "/tmp"} in container(job)["volumeMounts"]
    assert container(job)["resources"]["limits"]["memory"] == "256Mi"
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["onExitCodes"] == {
        "containerName": "autoscaler",
        "operator": "In",
        "values": [2, 4],
    }
    assert rules[1]["action"] == "Ignore"


def test_controller_env_follows_the_values(helm: Helm) -> None:
    r = autoscaled(
        helm,
        min=2,
        max=40,
        targetSeconds=1800,
        itemsPerWorker=50,
        interval=15,
        cooldown=300,
        concurrency=4,
    )
    e = env(controller(r))
    assert e["WQ_RUN"] == "wq-1"
    assert e["WQ_REDIS_URL"] == "redis://wq-redis:6379/0"
    assert e["WQ_REDIS_PASSWORD"] == {"secretKeyRef": {"name": "wq-redis", "key": "redis-password"}}
    assert e["WQ_AUTOSCALE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert (e["WQ_AUTOSCALE_MIN"], e["WQ_AUTOSCALE_MAX"]) == ("2", "40")
    assert e["WQ_AUTOSCALE_TARGET_SECONDS"] == "1800"
    assert e["WQ_AUTOSCALE_ITEMS_PER_WORKER"] == "50"
    assert (e["WQ_AUTOSCALE_INTERVAL"], e["WQ_AUTOSCALE_COOLDOWN"]) == ("15", "300")
    assert e["WQ_CONCURRENCY"] == "4"
    assert e["WQ_REDIS_WAIT"] == "60"


@pytest.mark.parametrize(
    ("values", "parallelism"),
    [
        ({}, 3),  # worker.parallelism, within the default 1..10
        ({"parallelism": 30}, 10),
        ({"parallelism": 2, "min": 5, "max": 8}, 5),
        ({"parallelism": 6, "min": 5, "max": 8}, 6),
    ],
)
def test_worker_job_starts_within_the_limits(
    helm: Helm, values: dict[str, int], parallelism: int
) -> None:
    assert autoscaled(helm, **values).one("Job", "worker")["spec"]["parallelism"] == parallelism


def test_network_policy_lets_the_controller_reach_redis(helm: Helm) -> None:
    r = helm.render(ON)
    [peer] = r.one("NetworkPolicy", "redis")["spec"]["ingress"][0]["from"]
    assert matches(peer["podSelector"], pod_labels(controller(r)))


def test_names_fit_for_the_longest_release_and_run_ids(helm: Helm) -> None:
    r = helm.render(ON, release="r" * 53)
    for obj in r.manifests:
        assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
    r = helm.render({**ON, "runId": "a" * 56})
    assert controller(r)["metadata"]["name"] == "a" * 56 + "-scaler"


def test_external_redis_ca_reaches_the_controller(helm: Helm) -> None:
    from tests.chart.test_render import TLS_CA, assert_ca_mounted

    r = helm.render({**TLS_CA, **ON})
    assert_ca_mounted(pod_spec(controller(r)), container(controller(r)))


def test_notes_say_who_sizes_the_job(helm: Helm, notes_chart: Path) -> None:
    notes = render_notes(helm, notes_chart, {**ON, "worker": {"parallelism": 40, **ON["worker"]}})
    assert "wq run wq-1: 10 worker pod(s), handler demo" in notes
    assert "Autoscaled between 1 and 10 worker pods by job wq-1-scaler" in notes
    assert "kubectl -n default logs job/wq-1-scaler;" in notes
    assert "; kubectl -n default describe job wq-1-worker\n" in notes
    assert "Autoscaled" not in render_notes(helm, notes_chart)


# --- one table --------------------------------------------------------------------------------

TABLE = settings(AutoscaleConfig)


def test_every_variable_the_controller_sets_is_a_setting(helm: Helm) -> None:
    known = {s.env for cls in (AutoscaleConfig, ConnectionConfig) for _, s in settings(cls)}
    known.add(setting_of(WorkerConfig, "concurrency").env)
    names = {e["name"] for e in container(controller(helm.render(ON)))["env"]}
    assert names - known == set()
    assert {s.env for _, s in TABLE if s.value} <= names


def test_values_yaml_autoscale_keys_are_the_table() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    autoscale = values["worker"]["autoscale"]
    table = {s.value.removeprefix("autoscale."): f.default for f, s in TABLE if s.value}
    assert set(autoscale) - {"enabled", "resources"} == set(table)
    assert {k: float(autoscale[k]) for k in table} == {k: float(v) for k, v in table.items()}
    assert autoscale["enabled"] is False


def test_schema_bounds_are_the_table_bounds() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    props = schema["properties"]["worker"]["properties"]["autoscale"]["properties"]
    for _, s in TABLE:
        if s.value is None:
            continue
        prop = props[s.value.removeprefix("autoscale.")]
        assert isinstance(s.type, Number)
        assert (prop["minimum"], prop["maximum"]) == (s.type.low, s.type.high), s.value
        wanted = "integer" if s.type.integer else ["number", "string"]
        assert prop["type"] == wanted, s.value


# --- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["worker.autoscale.min=0"], "at '/worker/autoscale/min': minimum: got 0, want 1"),
        (["worker.autoscale.max=0"], "at '/worker/autoscale/max': minimum: got 0, want 1"),
        (["worker.autoscale.targetSeconds=0"], "at '/worker/autoscale/targetSeconds'"),
        (["worker.autoscale.targetSeconds=soon"], "at '/worker/autoscale/targetSeconds'"),
        (["worker.autoscale.itemsPerWorker=-1"], "at '/worker/autoscale/itemsPerWorker'"),
        (["worker.autoscale.interval=0"], "at '/worker/autoscale/interval'"),
        (["worker.autoscale.cooldown=-1"], "at '/worker/autoscale/cooldown'"),
        (["worker.autoscale.enabled=yes"], "at '/worker/autoscale/enabled': got string"),
        (["worker.autoscale.maximum=3"], "additional properties 'maximum' not allowed"),
    ],
)
def test_schema_rejects(helm: Helm, sets: list[str], message: str) -> None:
    err = helm.render_error(sets=sets)
    assert SCHEMA in err
    assert message in err


def test_min_above_max_is_refused(helm: Helm) -> None:
    values = {"worker": {"autoscale": {"enabled": True, "min": 8, "max": 4}}}
    err = helm.render_error(values)
    assert VALIDATION in err
    assert "wq: worker.autoscale.min (8) is above worker.autoscale.max (4)." in err
    off = {"worker": {"autoscale": {"enabled": False, "min": 8, "max": 4}}}
    assert helm.render(off).all("Role") == []  # not checked while off: nothing uses them


def readme_scaled_job() -> Manifest:
    """The KEDA ScaledJob example of README.md, as a user would copy it."""
    text = (CHART.parent / "README.md").read_text(encoding="utf-8")
    [block] = [
        b.split("```", 1)[0]
        for b in text.split("```yaml\n")[1:]
        if b.startswith("apiVersion: keda.sh/")
    ]
    doc: Manifest = yaml.safe_load(block)
    return doc


def test_the_readmes_keda_scaled_job_fits_keda_and_the_chart(
    helm: Helm, crds: CrdValidator
) -> None:
    """What the README claims of its ScaledJob: KEDA's own CRD schema accepts it (unknown
    fields refused), and its pods are the chart's workers for release `nightly`: the Redis
    NetworkPolicy admits them, and their Redis URL and password Secret are the chart's."""
    job = readme_scaled_job()
    crds.validate(job)
    r = helm.render({"runId": "nightly", "items": ["a"]}, release="nightly")
    template = job["spec"]["jobTargetRef"]["template"]
    [peer] = r.one("NetworkPolicy", "redis")["spec"]["ingress"][0]["from"]
    assert matches(peer["podSelector"], template["metadata"]["labels"])
    [theirs] = template["spec"]["containers"]
    ours = {e["name"]: e for e in container(r.one("Job", "worker"))["env"]}
    for e in theirs["env"]:
        if e["name"] in ("WQ_REDIS_URL", "WQ_REDIS_PASSWORD", "WQ_RUN"):
            assert e == ours[e["name"]], e["name"]
    assert (
        template["spec"]["serviceAccountName"]
        == pod_spec(r.one("Job", "worker"))["serviceAccountName"]
    )
