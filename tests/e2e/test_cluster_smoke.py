"""Smoke test of the kind cluster from `make kind-up` (run by `make e2e-smoke`).

Proves what the e2e tests rely on: the node is Ready, a pod from a locally built
image runs, pulled from the cluster's local registry (pull policy IfNotPresent), a
Service name resolves through cluster DNS, and a Service ClusterIP answers from
another pod. The cluster comes from KUBECONFIG; the images from PYTHON_BASE_IMAGE
and REDIS_IMAGE, as scripts/cluster-images.sh pushed them to that registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.kube import setting
from tests.e2e.release import Image, registry_digest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def python_image() -> str:
    return setting("PYTHON_BASE_IMAGE", "`make e2e-smoke` or `make e2e`")


def redis_image() -> str:
    return setting("REDIS_IMAGE", "`make e2e-smoke` or `make e2e`")


def run_kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("KUBECONFIG is not set: run `make e2e-smoke` (it runs `make kind-up`)")
    return subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=180, check=False
    )


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = run_kubectl(*args, stdin=stdin)
    if check and proc.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def apply(manifest: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", stdin=json.dumps(manifest))


def debug_info(namespace: str, pod: str) -> str:
    describe = kubectl("-n", namespace, "describe", "pod", pod, check=False)
    logs = kubectl("-n", namespace, "logs", pod, "--all-containers", check=False)
    return f"--- describe ---\n{describe}\n--- logs ---\n{logs}"


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    name = f"wq-smoke-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    # Pods need the default service account, which appears shortly after.
    deadline = time.monotonic() + 60
    while not kubectl("-n", name, "get", "serviceaccount", "default", check=False):
        if time.monotonic() > deadline:
            pytest.fail(f"no default service account in {name}")
        time.sleep(1)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def redis_service(namespace: str) -> str:
    """A Redis pod from the locally built image behind a ClusterIP Service."""
    labels = {"app.kubernetes.io/name": "redis-smoke"}
    apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "redis", "namespace": namespace, "labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "redis",
                        "image": redis_image(),
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 6379}],
                        "readinessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 1},
                    }
                ]
            },
        }
    )
    apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "redis", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 6379, "targetPort": 6379}]},
        }
    )
    proc = run_kubectl(
        "-n", namespace, "wait", "pod/redis", "--for=condition=Ready", "--timeout=2m"
    )
    if proc.returncode != 0:
        pytest.fail(f"redis pod not Ready: {proc.stderr}\n{debug_info(namespace, 'redis')}")
    return "redis"


def run_python(namespace: str, code: str, timeout: float = 120) -> str:
    """Run `python3 -c code` in a pod from the local python image; return its logs.

    Waits for Succeeded or Failed and fails fast, with describe and logs, on Failed.
    """
    name = f"py-{uuid.uuid4().hex[:6]}"
    apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "python",
                        "image": python_image(),
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python3", "-c", code],
                    }
                ],
            },
        }
    )
    deadline = time.monotonic() + timeout
    phase = ""
    while time.monotonic() < deadline:
        phase = kubectl("-n", namespace, "get", "pod", name, "-o", "jsonpath={.status.phase}")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    if phase != "Succeeded":
        pytest.fail(f"pod {name} ended {phase or 'nowhere'}:\n{debug_info(namespace, name)}")
    return kubectl("-n", namespace, "logs", name)


def test_node_ready() -> None:
    nodes = kubectl_json("get", "nodes")["items"]
    assert nodes, "cluster has no nodes"
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready, f"{node['metadata']['name']} has no Ready condition"
        assert ready[0]["status"] == "True", ready[0]


def test_local_image_pod_runs(namespace: str, redis_service: str) -> None:
    pod = kubectl_json("-n", namespace, "get", "pod", "redis")
    assert pod["status"]["phase"] == "Running"
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] is True
    # The digest the registry serves for the tag, under the registry's name: containerd pulled
    # it from there. (Not status.image: when two tags share a digest, as content-tagged builds
    # of an unchanged image do on a kept cluster, it may name the other tag.)
    image = Image.parse(redis_image())
    assert status["imageID"] == f"{image.repository}@{registry_digest(image)}", status
    # And a run-to-completion pod from the other local image.
    assert run_python(namespace, "import sys; print(sys.version_info[:2])").strip() == "(3, 11)"


@pytest.fixture
def cluster_ip(namespace: str, redis_service: str) -> str:
    return kubectl(
        "-n", namespace, "get", "service", redis_service, "-o", "jsonpath={.spec.clusterIP}"
    )


def test_dns_resolves_service(namespace: str, redis_service: str, cluster_ip: str) -> None:
    code = (
        "import socket\n"
        f"print(socket.gethostbyname('{redis_service}'))\n"
        f"print(socket.gethostbyname('{redis_service}.{namespace}.svc.cluster.local'))\n"
    )
    assert run_python(namespace, code).split() == [cluster_ip, cluster_ip]


def test_cluster_ip_reachable(namespace: str, cluster_ip: str) -> None:
    code = (
        "import socket\n"
        f"s = socket.create_connection(('{cluster_ip}', 6379), timeout=10)\n"
        "s.sendall(b'PING\\r\\n')\n"
        "print(s.recv(64).decode().strip())\n"
    )
    assert run_python(namespace, code).strip() == "+PONG"
