"""What the chart renders for the main value combinations, checked on the parsed objects."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from tests.chart.helmlib import CHART, MONITORING_APIS, Helm, Manifest, Rendered

COMMON_LABELS = {
    "helm.sh/chart": "wq-0.1.0",
    "app.kubernetes.io/name": "wq",
    "app.kubernetes.io/instance": "wq",
    "app.kubernetes.io/version": "0.1.0",
    "app.kubernetes.io/part-of": "wq",
    "app.kubernetes.io/managed-by": "Helm",
}


def pod_template(obj: Manifest) -> Manifest:
    """The pod of a Pod, or the pod template of a Deployment or Job."""
    return obj if obj["kind"] == "Pod" else cast(Manifest, obj["spec"]["template"])


def pod_spec(obj: Manifest) -> Manifest:
    return cast(Manifest, pod_template(obj)["spec"])


def pod_labels(obj: Manifest) -> dict[str, str]:
    return cast(dict[str, str], pod_template(obj)["metadata"]["labels"])


def container(obj: Manifest) -> Manifest:
    containers = cast(list[Manifest], pod_spec(obj)["containers"])
    assert len(containers) == 1
    return containers[0]


def env(obj: Manifest) -> dict[str, Any]:
    """Container env as name -> value (or the valueFrom dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(obj).get("env", [])}


def workloads(r: Rendered) -> list[Manifest]:
    return [m for m in r.manifests if m["kind"] in ("Deployment", "Job", "Pod")]


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics for matchLabels + In expressions."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


# --- one complete run -----------------------------------------------------------------------


def test_default_install_renders_one_complete_run(helm: Helm) -> None:
    r = helm.render(sets=["items={apple,banana,cherry}"])
    assert r.kinds() == [
        "ConfigMap",
        "Deployment",
        "Job",
        "Job",
        "NetworkPolicy",
        "NetworkPolicy",
        "Pod",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    assert {m["metadata"]["name"] for m in r.all("Job")} == {"wq-1-seed", "wq-1-worker"}


def test_worker_job_is_a_work_queue(helm: Helm) -> None:
    job = helm.render(sets=["items={a}", "worker.parallelism=7"]).one("Job", "worker")
    spec = job["spec"]
    assert spec["parallelism"] == 7
    assert "completions" not in spec
    assert "completionMode" not in spec
    assert spec["backoffLimit"] == 6
    assert "activeDeadlineSeconds" not in spec
    assert "ttlSecondsAfterFinished" not in spec
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert container(job)["name"] == "worker"
    assert container(job)["command"] == ["wq"]
    assert container(job)["args"] == ["work"]
    # `kubectl describe pod` shows the worker's summary, or its log's end if it wrote none.
    assert container(job)["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_worker_pod_failure_policy(helm: Helm) -> None:
    rules = helm.render().one("Job", "worker")["spec"]["podFailurePolicy"]["rules"]
    assert rules == [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "worker", "operator": "In", "values": [2, 3, 4]},
        },
        {
            "action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
        },
    ]


def test_seed_job_fails_at_once_on_config_error_only(helm: Helm) -> None:
    job = helm.render().one("Job", "seed")
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "seed", "operator": "In", "values": [2]},
    }
    assert rules[1]["action"] == "Ignore"
    assert job["spec"]["backoffLimit"] == 4
    assert job["spec"]["activeDeadlineSeconds"] == 600
    assert env(job)["WQ_REDIS_WAIT"] == "120"


def test_worker_env_follows_the_contract(helm: Helm) -> None:
    values = {
        "worker": {
            "lease": 45,
            "itemTimeout": 600,
            "maxAttempts": 5,
            "concurrency": 4,
            "seedWait": 90,
            "poll": 0.5,
            "redisWait": 30,
            "demoSleep": 0.25,
        }
    }
    e = env(helm.render(values).one("Job", "worker"))
    assert e["WQ_REDIS_URL"] == "redis://wq-redis:6379/0"
    assert e["WQ_REDIS_PASSWORD"] == {"secretKeyRef": {"name": "wq-redis", "key": "redis-password"}}
    assert e["WQ_RUN"] == "wq-1"
    assert e["WQ_HANDLER"] == "demo"
    assert e["WQ_DEMO_SLEEP"] == "0.25"
    assert e["WQ_LEASE"] == "45"
    assert e["WQ_ITEM_TIMEOUT"] == "600"
    assert e["WQ_MAX_ATTEMPTS"] == "5"
    assert e["WQ_CONCURRENCY"] == "4"
    assert e["WQ_SEED_WAIT"] == "90"
    assert e["WQ_POLL"] == "0.5"
    assert e["WQ_REDIS_WAIT"] == "30"
    for unset in ("WQ_COMMAND", "WQ_PYTHON", "WQ_SHELL", "WQ_FAIL_ON_DEAD"):
        assert unset not in e
    # Every value is a string (Kubernetes rejects numbers in env values).
    assert all(isinstance(v, str | dict) for v in e.values())


def test_fail_on_dead_sets_the_env(helm: Helm) -> None:
    e = env(helm.render({"worker": {"failOnDead": True}}).one("Job", "worker"))
    assert e["WQ_FAIL_ON_DEAD"] == "true"


# --- items ----------------------------------------------------------------------------------


def items_json(r: Rendered) -> Any:
    cm = r.one("ConfigMap")
    assert set(cm["data"]) == {"items.json"}
    return json.loads(cm["data"]["items.json"])


def test_items_from_set_travel_as_json(helm: Helm) -> None:
    r = helm.render(sets=["items={apple,banana,cherry}"])
    assert items_json(r) == ["apple", "banana", "cherry"]
    seed = r.one("Job", "seed")
    assert container(seed)["args"] == [
        "seed",
        "--items-file",
        "/etc/wq/items/items.json",
        "--format",
        "json",
    ]
    cm_name = r.one("ConfigMap")["metadata"]["name"]
    assert cm_name == "wq-1-items"
    volumes = {v["name"]: v for v in pod_spec(seed)["volumes"]}
    assert volumes["items"]["configMap"]["name"] == cm_name
    mounts = {m["name"]: m for m in container(seed)["volumeMounts"]}
    assert mounts["items"] == {"name": "items", "mountPath": "/etc/wq/items", "readOnly": True}


def test_structured_items_round_trip(helm: Helm) -> None:
    items: list[Any] = [
        {"src": "a.png", "dst": "a.webp", "opts": {"q": 80, "tags": ["x", "y"]}},
        "plain",
        42,
        'quote " and \\ and unicode é',
    ]
    assert items_json(helm.render({"items": items})) == items


def test_empty_items_are_refused_by_the_seeder_unless_allowed(helm: Helm) -> None:
    r = helm.render()
    assert items_json(r) == []
    # The seeder runs, and refuses the empty source (exit 2: the Job fails at once).
    assert "--allow-empty" not in container(r.one("Job", "seed"))["args"]
    allowed = helm.render({"seed": {"allowEmpty": True}})
    assert items_json(allowed) == []
    assert container(allowed.one("Job", "seed"))["args"] == [
        "seed",
        "--items-file",
        "/etc/wq/items/items.json",
        "--format",
        "json",
        "--allow-empty",
    ]


@pytest.mark.parametrize(
    ("values", "args"),
    [
        ({"itemsUrl": "s3://b/i.txt"}, ["--items-url", "s3://b/i.txt", "--progressive"]),
        ({"itemsList": "s3://b/*.png"}, ["--list", "s3://b/*.png", "--progressive"]),
        ({"itemsFile": "a\n"}, ["--items-file", "/etc/wq/items/items.txt", "--format", "lines"]),
        ({"itemRange": {"start": 0, "end": 1}}, ["--range", "0:1:1"]),  # never empty
    ],
)
def test_allow_empty_reaches_the_seeder_of_every_source_that_may_be_empty(
    helm: Helm, values: Manifest, args: list[str]
) -> None:
    r = helm.render({**values, "seed": {"allowEmpty": True}})
    allow = [] if "itemRange" in values else ["--allow-empty"]
    assert container(r.one("Job", "seed"))["args"] == ["seed", *args, *allow]


def test_items_file_travels_as_lines(helm: Helm, tmp_path: Path) -> None:
    text = "alpha\nbeta gamma\n{not json}\n"
    path = tmp_path / "items.txt"
    path.write_text(text, encoding="utf-8")
    r = helm.render(extra=["--set-file", f"itemsFile={path}"])
    cm = r.one("ConfigMap")
    assert cm["data"] == {"items.txt": text}
    assert container(r.one("Job", "seed"))["args"] == [
        "seed",
        "--items-file",
        "/etc/wq/items/items.txt",
        "--format",
        "lines",
    ]


@pytest.mark.parametrize(
    ("item_range", "arg"),
    [
        ({"start": 0, "end": 1000000}, "0:1000000:1"),
        ({"start": 10, "end": 100, "step": 5}, "10:100:5"),
        ({"start": -5, "end": 5}, "-5:5:1"),
        # The widest range a values file carries exactly (Helm reads it as floating point).
        (
            {"start": -(2**53 - 1), "end": 2**53 - 1, "step": 2**53 - 1},
            "-9007199254740991:9007199254740991:9007199254740991",
        ),
    ],
)
def test_item_range_is_generated_by_the_seeder(
    helm: Helm, item_range: dict[str, int], arg: str
) -> None:
    r = helm.render({"itemRange": item_range})
    assert r.all("ConfigMap") == []
    seed = r.one("Job", "seed")
    assert container(seed)["args"] == ["seed", "--range", arg]
    assert "items" not in {v["name"] for v in pod_spec(seed)["volumes"]}


def test_item_range_from_set_flags(helm: Helm) -> None:
    r = helm.render(sets=["itemRange.start=1", "itemRange.end=2000001", "itemRange.step=2"])
    assert container(r.one("Job", "seed"))["args"] == ["seed", "--range", "1:2000001:2"]


def test_shards_split_the_range(helm: Helm) -> None:
    r = helm.render({"itemRange": {"start": 0, "end": 30}, "shards": 3})
    assert container(r.one("Job", "seed"))["args"] == ["seed", "--range", "0:30:1", "--shards", "3"]


def test_shards_take_listed_items(helm: Helm) -> None:
    for values, source in (
        ({"items": ["a", "b"]}, ["--items-file", "/etc/wq/items/items.json", "--format", "json"]),
        (
            {"itemsUrl": "s3://b/i.jsonl", "seed": {"progressive": False}},
            ["--items-url", "s3://b/i.jsonl"],
        ),
    ):
        r = helm.render({**values, "shards": 2})
        assert container(r.one("Job", "seed"))["args"] == ["seed", *source, "--shards", "2"]


def test_item_range_from_set_flags_is_exact_up_to_64_bits(helm: Helm) -> None:
    big = 2**63 - 1
    sets = [f"itemRange.start=-{big}", f"itemRange.end={big}", f"itemRange.step={big}"]
    r = helm.render(sets=sets)
    assert container(r.one("Job", "seed"))["args"] == ["seed", "--range", f"-{big}:{big}:{big}"]


def test_items_just_under_the_configmap_limit_render(helm: Helm) -> None:
    items = ["x" * 990] * 1000  # ~994 kB of JSON
    assert len(json.dumps(items, separators=(",", ":"))) < 1_000_000
    assert len(items_json(helm.render({"items": items}))) == 1000


@pytest.mark.parametrize(
    ("values", "args"),
    [
        (
            {"itemsUrl": "s3://bucket/items.jsonl.gz"},
            ["--items-url", "s3://bucket/items.jsonl.gz", "--progressive"],
        ),
        (
            {"itemsUrl": "https://example.org/export?id=7", "itemsFormat": "json"},
            ["--items-url", "https://example.org/export?id=7", "--format", "json", "--progressive"],
        ),
        (
            {"itemsList": "gs://bucket/in/*.png"},
            ["--list", "gs://bucket/in/*.png", "--progressive"],
        ),
        (
            {"itemsList": "gs://bucket/in/*.png", "seed": {"progressive": False}},
            ["--list", "gs://bucket/in/*.png"],
        ),
        (
            {"itemsUrl": "s3://b/i.txt", "seed": {"progressive": False}},
            ["--items-url", "s3://b/i.txt"],
        ),
    ],
)
def test_items_url_and_list_are_streamed_by_the_seeder(
    helm: Helm, values: Manifest, args: list[str]
) -> None:
    r = helm.render(values)
    assert r.all("ConfigMap") == []  # nothing travels in the chart: any number of items
    seed = r.one("Job", "seed")
    assert container(seed)["args"] == ["seed", *args]
    assert "items" not in {v["name"] for v in pod_spec(seed)["volumes"]}
    assert pod_spec(seed)["serviceAccountName"] == "wq"


def test_seed_credentials_come_from_secrets_and_identities(helm: Helm) -> None:
    """Credentials for the items' store reach the seeder alone: a Secret's variables, a
    mounted credentials file, a ServiceAccount bound to a cloud identity."""
    role = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/wq-items"}
    secret_key = {"secretKeyRef": {"name": "s3", "key": "secret"}}
    r = helm.render(
        {
            "itemsUrl": "s3://bucket/items.txt",
            "seed": {
                "serviceAccount": {"create": True, "annotations": role},
                "extraEnvFrom": [{"secretRef": {"name": "s3-keys"}}],
                "extraEnv": [
                    {"name": "AWS_ENDPOINT_URL", "value": "https://minio.example:9000"},
                    {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret_key},
                ],
                "extraVolumes": [{"name": "aws", "secret": {"secretName": "aws-profile"}}],
                "extraVolumeMounts": [{"name": "aws", "mountPath": "/etc/aws", "readOnly": True}],
            },
        }
    )
    seed = r.one("Job", "seed")
    accounts = {a["metadata"]["name"]: a for a in r.all("ServiceAccount")}
    assert set(accounts) == {"wq", "wq-seed"}
    assert accounts["wq-seed"]["metadata"]["annotations"] == role
    assert accounts["wq-seed"]["automountServiceAccountToken"] is False
    assert pod_spec(seed)["serviceAccountName"] == "wq-seed"
    assert pod_spec(r.one("Job", "worker"))["serviceAccountName"] == "wq"  # workers: theirs
    assert container(seed)["envFrom"] == [{"secretRef": {"name": "s3-keys"}}]
    assert env(seed)["AWS_ENDPOINT_URL"] == "https://minio.example:9000"
    assert env(seed)["AWS_SECRET_ACCESS_KEY"] == secret_key
    assert {"name": "aws", "mountPath": "/etc/aws", "readOnly": True} in container(seed)[
        "volumeMounts"
    ]
    assert {"name": "aws", "secret": {"secretName": "aws-profile"}} in pod_spec(seed)["volumes"]
    worker = container(r.one("Job", "worker"))
    assert "envFrom" not in worker
    assert "AWS_SECRET_ACCESS_KEY" not in env(r.one("Job", "worker"))
    named = helm.render(
        {"itemsUrl": "gs://b/i.txt", "seed": {"serviceAccount": {"name": "items-reader"}}}
    )
    assert pod_spec(named.one("Job", "seed"))["serviceAccountName"] == "items-reader"
    assert [a["metadata"]["name"] for a in named.all("ServiceAccount")] == ["wq"]


def test_seed_disabled_renders_no_seeder(helm: Helm) -> None:
    r = helm.render({"seed": {"enabled": False}})
    assert r.all("ConfigMap") == []
    assert [j["metadata"]["name"] for j in r.all("Job")] == ["wq-1-worker"]


# --- handlers -------------------------------------------------------------------------------


def test_command_handler(helm: Helm) -> None:
    command = ["convert", "/data/{{ item.src }}", "-quality", "80", "/out/{{ item.dst }}"]
    e = env(
        helm.render({"worker": {"handler": "command", "command": command}}).one("Job", "worker")
    )
    assert e["WQ_HANDLER"] == "command"
    assert json.loads(e["WQ_COMMAND"]) == command
    assert "WQ_SHELL" not in e
    assert "WQ_DEMO_SLEEP" not in e


def test_command_handler_with_shell(helm: Helm) -> None:
    values = {
        "worker": {"handler": "command", "command": ["echo {{ item }} | wc -c"], "shell": True}
    }
    e = env(helm.render(values).one("Job", "worker"))
    assert e["WQ_SHELL"] == "true"
    assert json.loads(e["WQ_COMMAND"]) == ["echo {{ item }} | wc -c"]


def test_python_handler(helm: Helm) -> None:
    values = {"worker": {"handler": "python", "python": "mypkg.tasks:process"}}
    e = env(helm.render(values).one("Job", "worker"))
    assert e["WQ_HANDLER"] == "python"
    assert e["WQ_PYTHON"] == "mypkg.tasks:process"


# --- run id ---------------------------------------------------------------------------------


def test_run_id_override_names_jobs_and_keys(helm: Helm) -> None:
    r = helm.render({"runId": "Nightly_2024.06"}, sets=["items={a}"])
    names = {m["metadata"]["name"] for m in r.manifests}
    assert {"nightly-2024-06-seed", "nightly-2024-06-worker", "nightly-2024-06-items"} <= names
    for obj in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod")):
        assert env(obj)["WQ_RUN"] == "Nightly_2024.06"  # the key namespace keeps its exact case


def test_default_run_id_carries_release_and_revision(helm: Helm) -> None:
    r = helm.render(release="batch")
    assert env(r.one("Job", "worker"))["WQ_RUN"] == "batch-wq-1"
    assert r.one("Job", "worker")["metadata"]["name"] == "batch-wq-1-worker"


@pytest.mark.parametrize("values", [{}, {"runId": "Nightly_2024.06"}])
def test_redis_service_names_the_current_run_for_kubectl_wq(helm: Helm, values: Manifest) -> None:
    # `kubectl wq` reads the release's current run there (wq.reach.release.RUN_ANNOTATION);
    # annotations of the user's own stay beside it.
    r = helm.render({**values, "redis": {"service": {"annotations": {"team": "x"}}}})
    annotations = r.one("Service", "redis")["metadata"]["annotations"]
    assert annotations == {"wq/run": env(r.one("Job", "worker"))["WQ_RUN"], "team": "x"}


def test_long_release_names_still_give_valid_job_names(helm: Helm) -> None:
    release = "r" * 53  # Helm's longest release name
    r = helm.render(release=release)
    for job in r.all("Job"):
        name = job["metadata"]["name"]
        assert len(name) <= 63, name
    run = env(r.one("Job", "worker"))["WQ_RUN"]
    assert run.endswith("-1")
    assert len(run) <= 56


def test_longest_run_id_fits(helm: Helm) -> None:
    run_id = "a" * 56
    r = helm.render({"runId": run_id})
    assert r.one("Job", "worker")["metadata"]["name"] == run_id + "-worker"
    assert len(r.one("Job", "worker")["metadata"]["name"]) == 63


# --- Redis ----------------------------------------------------------------------------------


def test_redis_deployment(helm: Helm) -> None:
    r = helm.render()
    dep = r.one("Deployment", "redis")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    c = container(dep)
    assert c["image"] == "redis:8.2.2"
    assert c["command"] == ["redis-server"]
    args = c["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[args.index("--port") + 1] == "6379"
    # The run survives a container restart: an append-only file in the emptyDir, no snapshots.
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"
    assert args[args.index("--dir") + 1] == "/data"
    assert args[args.index("--save") + 1] == ""
    secret_ref = {"secretKeyRef": {"name": "wq-redis", "key": "redis-password"}}
    assert env(dep) == {"REDIS_PASSWORD": secret_ref, "REDISCLI_AUTH": secret_ref}
    # Ready is a PONG; alive is any answer, LOADING too (a restarted Redis replaying its file).
    assert c["readinessProbe"]["exec"]["command"] == ["redis-cli", "-p", "6379", "-e", "ping"]
    assert c["livenessProbe"]["exec"]["command"] == ["redis-cli", "-p", "6379", "ping"]
    assert "initContainers" not in pod_spec(dep)
    assert c["resources"]["limits"]["memory"] == "1Gi"
    volumes = {v["name"]: v for v in pod_spec(dep)["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert r.all("PersistentVolumeClaim") == []


@pytest.mark.parametrize(
    ("sets", "maxmemory"),
    [
        ([], "912680550"),  # 85% of the default 1Gi limit
        (["redis.resources.limits.memory=512Mi"], "456340275"),
        (["redis.resources.limits.memory=1.5G"], "1275000000"),
        (["redis.maxmemory=2gb"], "2gb"),
        (["redis.resources.limits=null"], None),  # no limit: Redis's own default (none)
    ],
)
def test_redis_refuses_writes_when_full_instead_of_being_oom_killed(
    helm: Helm, sets: list[str], maxmemory: str | None
) -> None:
    args = container(helm.render(sets=sets).one("Deployment", "redis"))["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    if maxmemory is None:
        assert "--maxmemory" not in args
    else:
        assert args[args.index("--maxmemory") + 1] == maxmemory


def test_redis_image_override_for_e2e(helm: Helm) -> None:
    values = {"redis": {"image": {"repository": "wq-redis", "tag": "e2e", "pullPolicy": "Never"}}}
    c = container(helm.render(values).one("Deployment", "redis"))
    assert c["image"] == "wq-redis:e2e"
    assert c["imagePullPolicy"] == "Never"


def test_generated_password_secret(helm: Helm) -> None:
    secret = helm.render().one("Secret", "redis")
    password = base64.b64decode(secret["data"]["redis-password"]).decode()
    assert len(password) == 32
    assert password.isalnum()


def test_existing_secret_replaces_the_generated_one(helm: Helm) -> None:
    values = {"auth": {"existingSecret": "my-redis", "existingSecretPasswordKey": "pw"}}
    r = helm.render(values)
    assert r.all("Secret") == []
    ref = {"secretKeyRef": {"name": "my-redis", "key": "pw"}}
    assert env(r.one("Deployment", "redis"))["REDIS_PASSWORD"] == ref
    for obj in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod")):
        assert env(obj)["WQ_REDIS_PASSWORD"] == ref


def test_auth_disabled(helm: Helm) -> None:
    r = helm.render({"auth": {"enabled": False}})
    assert r.all("Secret") == []
    dep = r.one("Deployment", "redis")
    assert "--requirepass" not in container(dep)["args"]
    assert "env" not in container(dep)
    assert "WQ_REDIS_PASSWORD" not in env(r.one("Job", "worker"))


def test_persistence(helm: Helm) -> None:
    values = {"redis": {"persistence": {"enabled": True, "size": "20Gi", "storageClass": "fast"}}}
    r = helm.render(values)
    pvc = r.one("PersistentVolumeClaim", "redis")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    dep = r.one("Deployment", "redis")
    args = container(dep)["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"
    assert args[args.index("--save") + 1] == ""
    assert "initContainers" not in pod_spec(dep)
    volumes = {v["name"]: v for v in pod_spec(dep)["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": pvc["metadata"]["name"]}


@pytest.mark.parametrize("fsync", ["everysec", "always", "no"])
@pytest.mark.parametrize("persistence", [False, True])
def test_append_only_fsync(helm: Helm, fsync: str, persistence: bool) -> None:
    values = {"redis": {"appendOnly": {"fsync": fsync}, "persistence": {"enabled": persistence}}}
    args = container(helm.render(values).one("Deployment", "redis"))["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == fsync
    assert args.count("--appendfsync") == 1


def test_append_only_off_writes_nothing_to_disk(helm: Helm) -> None:
    args = container(
        helm.render({"redis": {"appendOnly": {"enabled": False}}}).one("Deployment", "redis")
    )["args"]
    assert args[args.index("--appendonly") + 1] == "no"
    assert "--appendfsync" not in args
    assert args[args.index("--save") + 1] == ""


def test_volume_permissions_init_container(helm: Helm) -> None:
    values = {"redis": {"persistence": {"enabled": True, "volumePermissions": {"enabled": True}}}}
    dep = helm.render(values).one("Deployment", "redis")
    spec = pod_spec(dep)
    (init,) = spec["initContainers"]
    assert init["name"] == "volume-permissions"
    assert init["image"] == container(dep)["image"]
    assert init["command"] == ["sh", "-ec", "chown -R 999:999 /data && chmod u+rwx,g+rwx /data"]
    assert init["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    # Root, for chown, with nothing else: only CHOWN and FOWNER, no escalation, no writes.
    assert init["securityContext"] == {
        "runAsUser": 0,
        "runAsGroup": 0,
        "runAsNonRoot": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "FOWNER"]},
    }
    assert init["resources"] == container(dep)["resources"]
    # Redis itself stays as locked down as without it.
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container(dep)["securityContext"]["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize(
    ("context", "owner"),
    [
        ({"runAsUser": 1001, "runAsGroup": 1002, "fsGroup": 1003}, "1001:1003"),
        ({"runAsUser": 1001, "runAsGroup": 1002, "fsGroup": None}, "1001:1002"),
    ],
)
def test_volume_permissions_give_the_volume_to_redis_user(
    helm: Helm, context: dict[str, Any], owner: str
) -> None:
    values = {
        "redis": {
            "persistence": {"enabled": True, "volumePermissions": {"enabled": True}},
            "podSecurityContext": context,
        }
    }
    (init,) = pod_spec(helm.render(values).one("Deployment", "redis"))["initContainers"]
    assert init["command"][-1].startswith(f"chown -R {owner} /data")


def test_volume_permissions_from_set_flags(helm: Helm) -> None:
    sets = [
        "redis.persistence.enabled=true",
        "redis.persistence.volumePermissions.enabled=true",
        "redis.podSecurityContext.runAsUser=2000",
        "redis.podSecurityContext.fsGroup=3000",
    ]
    (init,) = pod_spec(helm.render(sets=sets).one("Deployment", "redis"))["initContainers"]
    assert init["command"][-1].startswith("chown -R 2000:3000 /data")


def test_volume_permissions_only_with_persistence(helm: Helm) -> None:
    values = {"redis": {"persistence": {"volumePermissions": {"enabled": True}}}}
    assert "initContainers" not in pod_spec(helm.render(values).one("Deployment", "redis"))


def test_persistence_with_existing_claim(helm: Helm) -> None:
    values = {"redis": {"persistence": {"enabled": True, "existingClaim": "keep-me"}}}
    r = helm.render(values)
    assert r.all("PersistentVolumeClaim") == []
    volumes = {v["name"]: v for v in pod_spec(r.one("Deployment", "redis"))["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "keep-me"}


def test_redis_extra_args(helm: Helm) -> None:
    r = helm.render({"redis": {"extraArgs": ["--maxmemory", "2gb"]}})
    assert container(r.one("Deployment", "redis"))["args"][-2:] == ["--maxmemory", "2gb"]


def test_service_selects_redis_only(helm: Helm) -> None:
    r = helm.render()
    svc = r.one("Service", "redis")
    selector = svc["spec"]["selector"]
    assert selector["app.kubernetes.io/component"] == "redis"
    assert matches({"matchLabels": selector}, pod_labels(r.one("Deployment", "redis")))
    for other in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod")):
        assert not matches({"matchLabels": selector}, pod_labels(other))
    assert svc["spec"]["ports"] == [
        {"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}
    ]


# --- external Redis -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("external", "url"),
    [
        ({"url": "redis://shared-redis.infra:6379/3"}, "redis://shared-redis.infra:6379/3"),
        (
            {"url": "rediss://user@redis.example.com:6380/0"},
            "rediss://user@redis.example.com:6380/0",
        ),
        ({"host": "redis.infra"}, "redis://redis.infra:6379/0"),
        (
            {"host": "redis.infra", "port": 6380, "db": 2, "tls": True},
            "rediss://redis.infra:6380/2",
        ),
    ],
)
def test_external_redis(helm: Helm, external: dict[str, Any], url: str) -> None:
    r = helm.render({"redis": {"enabled": False}, "externalRedis": external})
    for kind in ("Deployment", "Service", "Secret", "NetworkPolicy", "PersistentVolumeClaim"):
        assert r.all(kind) == [], kind
    for obj in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod")):
        e = env(obj)
        assert e["WQ_REDIS_URL"] == url
        assert "WQ_REDIS_PASSWORD" not in e
        assert "WQ_REDIS_CA_CERT" not in e
        assert "redis-ca" not in {v["name"] for v in pod_spec(obj)["volumes"]}


def test_external_redis_cluster(helm: Helm) -> None:
    external = {"host": "redis-cluster.infra", "cluster": True}
    r = helm.render({"redis": {"enabled": False}, "externalRedis": external})
    for obj in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod")):
        assert env(obj)["WQ_REDIS_CLUSTER"] == "true"
    assert "WQ_REDIS_CLUSTER" not in env(helm.render().one("Job", "worker"))


def test_external_redis_password_from_secret(helm: Helm) -> None:
    values = {
        "redis": {"enabled": False},
        "externalRedis": {
            "url": "redis://r:6379/0",
            "existingSecret": "shared",
            "existingSecretPasswordKey": "p",
        },
    }
    e = env(helm.render(values).one("Job", "worker"))
    assert e["WQ_REDIS_PASSWORD"] == {"secretKeyRef": {"name": "shared", "key": "p"}}


TLS_CA = {
    "redis": {"enabled": False},
    "externalRedis": {
        "host": "redis.infra",
        "tls": True,
        "tlsCaSecret": "redis-ca",
        "tlsCaSecretKey": "ca.pem",
    },
}


def assert_ca_mounted(spec: Manifest, container: Manifest) -> None:
    """The CA Secret's key is mounted read-only where WQ_REDIS_CA_CERT points."""
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["redis-ca"] == {
        "name": "redis-ca",
        "secret": {"secretName": "redis-ca", "items": [{"key": "ca.pem", "path": "ca.crt"}]},
    }
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "redis-ca"]
    assert mount["readOnly"] is True
    ca_env = {e["name"]: e.get("value") for e in container["env"]}["WQ_REDIS_CA_CERT"]
    assert ca_env == mount["mountPath"] + "/ca.crt"


@pytest.mark.parametrize(
    "external",
    [
        TLS_CA["externalRedis"],
        {
            "url": "rediss://redis.infra:6380/0",
            "tlsCaSecret": "redis-ca",
            "tlsCaSecretKey": "ca.pem",
        },
    ],
)
def test_external_redis_tls_ca_reaches_every_wq_pod(helm: Helm, external: Manifest) -> None:
    r = helm.render({**TLS_CA, "externalRedis": external})
    for obj in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod")):
        assert env(obj)["WQ_REDIS_URL"].startswith("rediss://"), obj["metadata"]["name"]
        assert_ca_mounted(pod_spec(obj), container(obj))


# --- Job knobs ------------------------------------------------------------------------------


def test_optional_job_fields_render_zero(helm: Helm) -> None:
    values = {
        "worker": {"ttlSecondsAfterFinished": 0, "activeDeadlineSeconds": 3600, "backoffLimit": 0},
        "seed": {"ttlSecondsAfterFinished": 0},
    }
    r = helm.render(values)
    worker = r.one("Job", "worker")["spec"]
    assert worker["ttlSecondsAfterFinished"] == 0
    assert worker["activeDeadlineSeconds"] == 3600
    assert worker["backoffLimit"] == 0
    assert r.one("Job", "seed")["spec"]["ttlSecondsAfterFinished"] == 0


def test_seed_deadline_can_be_removed(helm: Helm) -> None:
    spec = helm.render(sets=["seed.activeDeadlineSeconds=null"]).one("Job", "seed")["spec"]
    assert "activeDeadlineSeconds" not in spec


def test_termination_grace_period(helm: Helm) -> None:
    assert pod_spec(helm.render().one("Job", "worker"))["terminationGracePeriodSeconds"] == 30
    r = helm.render({"worker": {"terminationGracePeriodSeconds": 120}})
    assert pod_spec(r.one("Job", "worker"))["terminationGracePeriodSeconds"] == 120


def test_worker_scheduling_and_extras(helm: Helm) -> None:
    values = {
        "worker": {
            "resources": {
                "requests": {"cpu": "2", "nvidia.com/gpu": 1},
                "limits": {"memory": "4Gi"},
            },
            "nodeSelector": {"pool": "batch"},
            "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a"]}
                                ]
                            }
                        ]
                    }
                }
            },
            "priorityClassName": "low",
            "extraEnv": [{"name": "OUT_DIR", "value": "/out"}],
            "extraEnvFrom": [{"secretRef": {"name": "creds"}}],
            "extraVolumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            "extraVolumeMounts": [{"name": "data", "mountPath": "/data"}],
            "podAnnotations": {"a": "b"},
            "podLabels": {"team": "x"},
        }
    }
    job = helm.render(values).one("Job", "worker")
    spec = pod_spec(job)
    c = container(job)
    # Helm merges maps into the defaults: the default memory request stays.
    assert c["resources"] == {
        "requests": {"cpu": "2", "memory": "64Mi", "nvidia.com/gpu": 1},
        "limits": {"memory": "4Gi"},
    }
    assert spec["nodeSelector"] == {"pool": "batch"}
    assert spec["tolerations"] == values["worker"]["tolerations"]
    assert spec["affinity"] == values["worker"]["affinity"]
    assert spec["priorityClassName"] == "low"
    assert env(job)["OUT_DIR"] == "/out"
    assert c["envFrom"] == [{"secretRef": {"name": "creds"}}]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data"}} in spec["volumes"]
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
    assert job["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    assert pod_labels(job)["team"] == "x"
    assert pod_labels(job)["app.kubernetes.io/component"] == "worker"


def test_image_tag_defaults_to_app_version_and_digest_wins(helm: Helm) -> None:
    assert container(helm.render().one("Job", "worker"))["image"] == "wq:0.1.0"
    r = helm.render(
        {"image": {"repository": "registry.local/wq", "tag": "dev", "pullPolicy": "Never"}}
    )
    c = container(r.one("Job", "worker"))
    assert c["image"] == "registry.local/wq:dev"
    assert c["imagePullPolicy"] == "Never"
    digest = "sha256:" + "ab" * 32
    r = helm.render({"image": {"digest": digest}, "redis": {"image": {"digest": digest}}})
    assert container(r.one("Job", "worker"))["image"] == "wq@" + digest
    assert container(r.one("Deployment", "redis"))["image"] == "redis@" + digest


def test_image_pull_secrets_reach_every_pod(helm: Helm) -> None:
    r = helm.render({"imagePullSecrets": [{"name": "regcred"}]})
    for obj in workloads(r):
        assert pod_spec(obj)["imagePullSecrets"] == [{"name": "regcred"}]


def test_helm_test_pod_checks_the_run(helm: Helm) -> None:
    pod = helm.render().one("Pod", "test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    # Gone when it passes (Helm's uninstall never deletes hooks), kept when it fails.
    policy = pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"].split(",")
    assert sorted(policy) == ["before-hook-creation", "hook-succeeded"]
    assert pod["metadata"]["name"] == "wq-1-test"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert container(pod)["command"] == ["wq"]
    assert container(pod)["args"] == ["status", "--check", "--expect-seeded"]
    assert env(pod)["WQ_RUN"] == "wq-1"


# --- security and labels --------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [{}, {"redis": {"persistence": {"enabled": True}}}, {"itemRange": {"start": 0, "end": 9}}],
)
def test_every_pod_is_locked_down(helm: Helm, values: Manifest) -> None:
    r = helm.render(values)
    assert len(workloads(r)) == 4
    for obj in workloads(r):
        spec = pod_spec(obj)
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["enableServiceLinks"] is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] > 0, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, where
    sa = r.one("ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    for obj in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod")):
        assert pod_spec(obj)["serviceAccountName"] == sa["metadata"]["name"]


def test_labels_on_every_object(helm: Helm) -> None:
    r = helm.render({"redis": {"persistence": {"enabled": True}}}, sets=["items={a}"])
    components = {}
    for obj in r.manifests:
        labels = obj["metadata"]["labels"]
        assert COMMON_LABELS.items() <= labels.items(), obj["metadata"]["name"]
        components[obj["kind"], obj["metadata"]["name"]] = labels.get("app.kubernetes.io/component")
    assert components == {
        ("ServiceAccount", "wq"): None,
        ("Secret", "wq-redis"): "redis",
        ("ConfigMap", "wq-1-items"): "seed",
        ("PersistentVolumeClaim", "wq-redis"): "redis",
        ("Service", "wq-redis"): "redis",
        ("Deployment", "wq-redis"): "redis",
        ("NetworkPolicy", "wq-redis"): "redis",
        ("NetworkPolicy", "wq-seed"): "seed",
        ("Job", "wq-1-seed"): "seed",
        ("Job", "wq-1-worker"): "worker",
        ("Pod", "wq-1-test"): "test",
    }
    for obj in workloads(r):
        assert COMMON_LABELS.items() <= pod_labels(obj).items()


def test_network_policy_admits_only_this_releases_wq_pods(helm: Helm) -> None:
    r = helm.render()
    np = r.one("NetworkPolicy", "redis")
    assert np["spec"]["policyTypes"] == ["Ingress"]
    assert matches(np["spec"]["podSelector"], pod_labels(r.one("Deployment", "redis")))
    [rule] = np["spec"]["ingress"]
    assert rule["ports"] == [{"port": "redis", "protocol": "TCP"}]
    [peer] = rule["from"]
    selector = peer["podSelector"]
    for obj in (r.one("Job", "seed"), r.one("Job", "worker"), r.one("Pod", "test")):
        assert matches(selector, pod_labels(obj))
    assert not matches(selector, pod_labels(r.one("Deployment", "redis")))
    other_release = {**pod_labels(r.one("Job", "worker")), "app.kubernetes.io/instance": "other"}
    assert not matches(selector, other_release)
    assert not matches(selector, {"app": "random"})


def test_network_policy_extra_peers_and_off_switch(helm: Helm) -> None:
    peer = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    np = helm.render({"networkPolicy": {"extraIngressFrom": [peer]}}).one("NetworkPolicy", "redis")
    assert np["spec"]["ingress"][0]["from"][1] == peer
    assert helm.render({"networkPolicy": {"enabled": False}}).all("NetworkPolicy") == []


def seed_egress(r: Any) -> list[dict[str, Any]]:
    np = r.one("NetworkPolicy", "seed")
    assert np["spec"]["policyTypes"] == ["Egress"]
    assert matches(np["spec"]["podSelector"], pod_labels(r.one("Job", "seed")))
    for obj in (r.one("Job", "worker"), r.one("Pod", "test"), r.one("Deployment", "redis")):
        assert not matches(np["spec"]["podSelector"], pod_labels(obj))
    rules: list[dict[str, Any]] = np["spec"]["egress"]
    return rules


def test_seeder_reaches_only_dns_and_redis_without_a_url(helm: Helm) -> None:
    """Items from the values (a ConfigMap) or a range: the seeder talks to Redis alone."""
    for values in ({"items": ["a"]}, {"itemRange": {"start": 0, "end": 5}}):
        r = helm.render(values)
        dns, redis = seed_egress(r)
        assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
        assert "to" not in dns
        [peer] = redis["to"]
        assert matches(peer["podSelector"], pod_labels(r.one("Deployment", "redis")))
        assert not matches(peer["podSelector"], pod_labels(r.one("Job", "worker")))
        assert redis["ports"] == [{"port": 6379, "protocol": "TCP"}]


@pytest.mark.parametrize("source", [{"itemsUrl": "s3://b/items.jsonl"}, {"itemsList": "s3://b/*"}])
def test_seeder_reaches_the_items_store_only_when_it_reads_one(
    helm: Helm, source: dict[str, str]
) -> None:
    r = helm.render(source)
    assert seed_egress(r)[2:] == [{}], "the default: anywhere"
    narrow = [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}], "ports": [{"port": 443}]}]
    r = helm.render({**source, "seed": {"networkPolicy": {"itemsEgress": narrow}}})
    assert seed_egress(r)[2:] == narrow
    assert (
        len(
            seed_egress(
                helm.render({"items": ["a"], "seed": {"networkPolicy": {"itemsEgress": narrow}}})
            )
        )
        == 2
    )


def test_seed_network_policy_off_switch_and_external_redis(helm: Helm) -> None:
    off = helm.render({"itemsUrl": "s3://b/i.txt", "networkPolicy": {"enabled": False}})
    assert off.all("NetworkPolicy") == []
    external = helm.render(
        {"itemsUrl": "s3://b/i.txt", "redis": {"enabled": False}, "externalRedis": {"host": "r"}}
    )
    assert external.all("NetworkPolicy") == []


# --- NOTES.txt ------------------------------------------------------------------------------


def render_notes(
    helm: Helm, chart: Path, values: Manifest | None = None, api_versions: Sequence[str] = ()
) -> str:
    r = helm.render(values, chart=chart, api_versions=api_versions)
    cm = next(m for m in r.all("ConfigMap") if m["metadata"]["name"] == "notes-under-test")
    return str(cm["data"]["notes"])


def notes_pod_command(notes: str, start: str) -> tuple[str, Manifest]:
    """The NOTES command starting with `start` (up to the blank line after it), checked to be
    valid shell, and the pod spec it passes to `kubectl run --overrides`."""
    first = notes.index(start)
    block = notes[first : notes.index("\n\n", first)]
    assert subprocess.run(["bash", "-n", "-c", block], check=False).returncode == 0, block
    overrides: Manifest = json.loads(block.split("--overrides='", 1)[1].split("'", 1)[0])
    return block, overrides


# An external Redis: `kubectl wq` cannot reach it, so NOTES give CLI pods instead.
EXTERNAL = {
    "redis": {"enabled": False},
    "externalRedis": {"host": "redis.infra", "existingSecret": "redis-auth"},
}
CLI_ENV = {"WQ_REDIS_URL", "WQ_REDIS_PASSWORD", "WQ_RUN"}


def test_notes_give_the_plugins_one_liners(helm: Helm, notes_chart: Path) -> None:
    notes = render_notes(helm, notes_chart, {"items": ["a", "b"]})
    assert "wq run wq-1: 3 worker pod(s), handler demo, items from items (2 item(s))." in notes
    assert "pip install ./images/worker" in notes
    lines = [line.strip() for line in notes.splitlines()]
    for command in ("watch", "dead", "status", "retry-dead"):
        assert any(line.startswith(f"kubectl wq {command} wq -n default") for line in lines)
    assert any(line.startswith("kubectl wq purge wq -n default --yes") for line in lines)
    assert "  kubectl wq report wq -n default > report.jsonl\n" in notes
    assert "  kubectl wq status wq -n default --check " in notes
    assert "  kubectl wq digest wq -n default --items-file FILE " in notes
    assert "kubectl -n default run " not in notes  # no CLI pod recipe
    assert "--overrides" not in notes


def test_notes_give_ready_to_paste_commands(helm: Helm, notes_chart: Path) -> None:
    notes = render_notes(helm, notes_chart, {"items": ["a", "b"], **EXTERNAL})
    assert "kubectl wq" not in notes
    assert "kubectl -n default exec job/wq-1-worker -c worker -- wq status --watch" in notes
    assert "kubectl -n default get job wq-1-worker" in notes
    assert "helm test wq -n default\n" in notes
    assert "kubectl -n default logs wq-1-test says why" in notes
    assert "kubectl -n default logs job/wq-1-worker -c worker" in notes
    # The wait loop and the `kubectl run` command are valid shell.
    block = notes[notes.index("  until state=") : notes.index("3. Check")]
    assert subprocess.run(["bash", "-n", "-c", block], check=False).returncode == 0
    run_cmd, overrides = notes_pod_command(notes, "kubectl -n default run ")
    [c] = overrides["spec"]["containers"]
    assert c["command"] == ["wq", "dead"]
    assert c["image"] == "wq:0.1.0"
    assert {e["name"] for e in c["env"]} == CLI_ENV
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert overrides["spec"]["automountServiceAccountToken"] is False
    assert overrides["spec"]["enableServiceLinks"] is False
    assert "stdin" not in c  # kubectl run -i would then print nothing from a script
    assert "app.kubernetes.io/component=cli" in run_cmd
    # No attach (`run -i`), which races a short pod: wait for it to succeed, then read its log.
    assert "--rm" not in run_cmd
    assert "wait pod/wq-cli --for=jsonpath='{.status.phase}'=Succeeded" in run_cmd
    assert "logs pod/wq-cli" in run_cmd


def test_notes_stream_the_report_through_exec(helm: Helm, notes_chart: Path) -> None:
    values = {"items": ["a", "b"], "worker": {"resultsTtl": 60}, **EXTERNAL}
    notes = render_notes(helm, notes_chart, values)
    assert "while the run's keys are kept\n   (60s after it drains)" in notes
    block, overrides = notes_pod_command(notes, "kubectl -n default run wq-report ")
    [c] = overrides["spec"]["containers"]
    # The pod idles and the report comes through exec: a pod's log is rotated at 10 MiB.
    assert c["command"] == ["sleep", "3600"]
    assert {e["name"] for e in c["env"]} == CLI_ENV
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert "app.kubernetes.io/component=cli" in block
    assert "exec pod/wq-report -- wq report > report.jsonl;" in block
    assert "logs" not in block
    # The pod is deleted whatever happened, and the report's exit code is the block's.
    assert block.endswith("delete pod wq-report --now >/dev/null; (exit $rc)")
    kept = render_notes(helm, notes_chart, {"items": ["a"], "worker": {"resultsTtl": 0}})
    assert "kubectl wq report" in kept
    assert "(until purged)" in kept


def test_notes_cli_pod_mounts_the_redis_ca(helm: Helm, notes_chart: Path) -> None:
    notes = render_notes(helm, notes_chart, TLS_CA)
    start = notes.index("--overrides='") + len("--overrides='")
    overrides = json.loads(notes[start : notes.index("'", start)])
    [c] = overrides["spec"]["containers"]
    assert_ca_mounted(overrides["spec"], c)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"itemRange": {"start": 0, "end": 100, "step": 2}}, "items from range(0, 100, 2)."),
        ({"itemRange": {"start": 0, "end": 1000000}}, "items from range(0, 1000000, 1)."),
        ({"itemsFile": "a\nb\nc\n"}, "items from itemsFile (3 line(s))."),
        (
            {"itemsUrl": "https://example.org/items.txt?X-Amz-Signature=abc"},
            "items from itemsUrl (https://example.org/items.txt?...).",
        ),
        (
            {"itemsList": "s3://bucket/in/*.png"},
            "items from itemsList (one item per object of s3://bucket/in/*.png).",
        ),
        ({"itemsList": "s3://b/in/*.png"}, "Read progressively: workers start on the first"),
        ({"seed": {"enabled": False}}, "wq seed --run wq-1 --items-file items.txt"),
        ({"seed": {"enabled": False}}, "wq seed --run wq-1 --adopt-list job2"),
        ({"runId": "nightly", **EXTERNAL}, "exec job/nightly-worker -c worker"),
        ({"runId": "nightly"}, "logs job/nightly-worker -c worker"),
        ({}, "No items: the seeding Job refuses an empty run (exit 2)."),
    ],
)
def test_notes_follow_values(
    helm: Helm, notes_chart: Path, values: Manifest, expected: str
) -> None:
    assert expected in render_notes(helm, notes_chart, values)


def test_notes_say_no_items_only_when_the_seeder_will_refuse_them(
    helm: Helm, notes_chart: Path
) -> None:
    for values in (
        {"items": ["a"]},
        {"seed": {"allowEmpty": True}},
        {"seed": {"enabled": False}},
        {"itemsUrl": "s3://b/i.txt"},
    ):
        assert "No items" not in render_notes(helm, notes_chart, values)


def test_notes_say_progressive_only_when_it_is(helm: Helm, notes_chart: Path) -> None:
    for values in (
        {"items": ["a"]},
        {"itemsUrl": "s3://b/i.txt", "seed": {"progressive": False}},
    ):
        assert "progressively" not in render_notes(helm, notes_chart, values)
    assert "progressively" in render_notes(helm, notes_chart, {"itemsUrl": "s3://b/i.txt"})


def test_notes_show_how_to_reach_the_metrics(helm: Helm, notes_chart: Path) -> None:
    assert "6. " not in render_notes(helm, notes_chart)  # metrics are off by default
    notes = render_notes(helm, notes_chart, {"metrics": {"enabled": True, "port": 9100}})
    start = notes.index("  (kubectl -n default port-forward svc/wq-exporter 9100:9100 ")
    block = notes[start : notes.index("\n\n", start)]
    assert subprocess.run(["bash", "-n", "-c", block], check=False).returncode == 0
    # The port-forward ends with the subshell, whatever curl did.
    assert "& trap 'kill \"$!\"' EXIT" in block
    assert "curl -fsS --retry 10 --retry-connrefused --retry-delay 1 " in block
    assert block.endswith("http://127.0.0.1:9100/metrics | grep '^wq_')")
    assert 'the series carry job="wq-exporter", namespace="default".' in notes
    assert "kubectl wq ui" not in notes  # the page is off by default
    paged = render_notes(helm, notes_chart, {"metrics": {"enabled": True, "ui": {"enabled": True}}})
    assert paged.endswith("\n\n  kubectl wq ui wq -n default")


def test_notes_say_which_monitoring_objects_exist(helm: Helm, notes_chart: Path) -> None:
    values = {
        "metrics": {
            "enabled": True,
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "dashboard": {"enabled": True, "namespace": "grafana"},
        }
    }
    with_crds = render_notes(helm, notes_chart, values, api_versions=MONITORING_APIS)
    assert "ServiceMonitor wq-exporter created." in with_crds
    alerts = "alerts WqRunStalled, WqDeadItems and WqRunLost."
    assert f"PrometheusRule wq-exporter created, {alerts}" in with_crds
    assert "ConfigMap grafana/wq-dashboard, labelled grafana_dashboard=1" in with_crds
    without = render_notes(helm, notes_chart, values)
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert f"No {kind}: the cluster has no monitoring.coreos.com/v1 {kind} API" in without
    dashboard_only = render_notes(helm, notes_chart, {"metrics": {"dashboard": {"enabled": True}}})
    assert '6. Grafana dashboard "wq runs": ConfigMap default/wq-dashboard' in dashboard_only
    assert "port-forward svc/wq-exporter" not in dashboard_only


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == "0.1.0"
    assert chart["kubeVersion"] == ">=1.31.0-0"
