"""Issue 13 on a real cluster: items read from an S3-compatible server running as a pod
(`rclone serve s3`, the pinned build, in an image made here and pulled from the cluster's
registry), by object (`itemsUrl`) and by listing (`itemsList`); and an open run that gets
items appended while its workers run, then sealed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.checks import assert_clean
from tests.e2e.kube import Kube, docker, setting, tool
from tests.e2e.release import Release, Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ACCESS, SECRET = "wq-e2e-access", "wq-e2e-secret-key"
BUCKET = "items"
LINES = [f"line-{n}" for n in range(300)]
OBJECTS = [f"in/photo-{n:02d}.jpg" for n in range(12)]


@pytest.fixture(scope="session")
def s3_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image with bin/rclone on the Python base image (the same Debian), pushed to the
    cluster's registry under a tag made from its id. Session fixtures run once per xdist
    worker: the build context is the worker's own, and the image is known by the id its build
    printed, never by a fixed tag that another worker's build could move."""
    base = setting("PYTHON_BASE_IMAGE")
    registry = base.split("/", 1)[0]
    rclone = Path(tool("rclone"))
    context = tmp_path_factory.mktemp("s3-image")
    (context / "rclone").write_bytes(rclone.read_bytes())
    (context / "rclone").chmod(0o755)
    (context / "Dockerfile").write_text(
        f"FROM {base}\nCOPY rclone /usr/local/bin/rclone\nUSER 10001:10001\n", encoding="utf-8"
    )
    image_id = docker("build", "-q", str(context)).strip()
    ref = f"{registry}/wq-rclone:e2e-{image_id.split(':')[-1][:12]}"
    docker("tag", image_id, ref)
    docker("push", "-q", ref)
    return ref


def start_s3(kube: Kube, image: str, files: dict[str, str]) -> str:
    """An S3 server pod and Service serving `files` (bucket/key -> text); its endpoint URL.
    An init container writes the files into the directory rclone serves (its top-level
    directories are the buckets)."""
    kube(
        "create",
        "configmap",
        "s3-files",
        *[
            f"--from-literal=f{i}={json.dumps([path, text])}"
            for i, (path, text) in enumerate(files.items())
        ],
    )
    writer = (
        "import json, os, pathlib\n"
        "for name in sorted(os.listdir('/files')):\n"
        "    if name.startswith('f'):\n"
        "        path, text = json.loads(pathlib.Path('/files', name).read_text())\n"
        "        target = pathlib.Path('/data', path)\n"
        "        target.parent.mkdir(parents=True, exist_ok=True)\n"
        "        target.write_text(text)\n"
    )
    secure = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "s3", "labels": {"app": "s3"}},
        "spec": {
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
            "initContainers": [
                {
                    "name": "files",
                    "image": image,
                    "command": ["python3", "-c", writer],
                    "securityContext": secure,
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "files", "mountPath": "/files"},
                    ],
                }
            ],
            "containers": [
                {
                    "name": "s3",
                    "image": image,
                    "command": [
                        "rclone",
                        "serve",
                        "s3",
                        "/data",
                        "--addr",
                        ":8080",
                        "--auth-key",
                        f"{ACCESS},{SECRET}",
                        "--config",
                        "/dev/null",
                    ],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                    "securityContext": secure,
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [
                {"name": "data", "emptyDir": {}},
                {"name": "files", "configMap": {"name": "s3-files"}},
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s3"},
        "spec": {"selector": {"app": "s3"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    kube(
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod, service]}),
    )
    kube("wait", "pod/s3", "--for=condition=Ready", "--timeout=180s")
    kube(
        "create",
        "secret",
        "generic",
        "s3-keys",
        f"--from-literal=AWS_ACCESS_KEY_ID={ACCESS}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={SECRET}",
    )
    return f"http://s3.{kube.namespace}.svc.cluster.local"


def seed_from_s3(endpoint: str) -> dict[str, Any]:
    return {
        "extraEnvFrom": [{"secretRef": {"name": "s3-keys"}}],
        "extraEnv": [
            {"name": "AWS_ENDPOINT_URL", "value": endpoint},
            {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
        ],
    }


def items_done(rel: Release) -> list[Any]:
    records = rel.report()
    assert {r["state"] for r in records} == {"done"}, records[:3]
    return [r["item"] for r in records]


def test_items_from_an_object_and_from_a_listing(
    release: Releases, namespace: Kube, s3_image: str
) -> None:
    files = {f"{BUCKET}/runs/items.txt": "".join(f"{line}\n" for line in LINES)}
    files |= {f"{BUCKET}/{key}": "jpeg\n" for key in OBJECTS}
    endpoint = start_s3(namespace, s3_image, files)

    def run_from(name: str, source: dict[str, str]) -> list[Any]:
        """Install a release reading `source` from the S3 pod; its items, once Complete."""
        rel = release(name)
        worker = {"parallelism": 2, "demoSleep": 0}
        rel.install({**source, "seed": seed_from_s3(endpoint), "worker": worker})
        rel.wait(timeout=300)
        done = items_done(rel)
        assert_clean(rel.status(), total=len(done))
        return done

    assert run_from("wq-object", {"itemsUrl": f"s3://{BUCKET}/runs/items.txt"}) == LINES
    by_listing = run_from("wq-listing", {"itemsList": f"s3://{BUCKET}/in/*.jpg"})
    assert by_listing == [f"s3://{BUCKET}/{key}" for key in sorted(OBJECTS)]


def test_an_open_run_takes_appends_while_workers_run_then_seals(release: Releases) -> None:
    rel = release("wq-open")
    rel.install({"seed": {"enabled": False}, "worker": {"parallelism": 2, "demoSleep": 0.2}})
    rel.wq("seed", "--open", "a1", "a2", "a3")
    wait_until("the first items done", lambda: rel.done_count() >= 3, timeout=180, interval=1)
    # Drained but open: the workers wait for more, never exit 0.
    assert rel.status()["state"].startswith("open"), rel.status()
    job = rel.kube.get("job", rel.worker_job())
    assert not job["status"].get("succeeded"), "a worker exited 0 on an open run"
    rel.wq("seed", "--append", "b1", "b2")
    wait_until("the appended items done", lambda: rel.done_count() >= 5, timeout=180, interval=1)
    rel.wq("seal")
    rel.wait(timeout=180)
    assert_clean(rel.status(), total=5)
    assert items_done(rel) == ["a1", "a2", "a3", "b1", "b2"]
