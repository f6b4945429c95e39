"""NetworkPolicy enforced for real (issue 10): the chart's policy lets the release's own wq
pods reach Redis and refuses a pod without their labels. The cluster enforces policy as users'
clusters do: kind's own networking on its official node images, kube-router's policy controller
on the node image built here (scripts/kind/netpol-up.sh)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.checks import assert_clean, worked_on
from tests.e2e.kube import Kube, fail_if_hopeless
from tests.e2e.release import Release, Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# Tries to connect to HOST:PORT until it succeeds or WINDOW seconds have passed, and says how
# it went. Trying for a while matters both ways: the policy agent admits a new pod only once it
# has seen the pod's address, and a refused pod must stay refused for the whole window. With a
# target other than Redis, the probe reaches Redis first: once the agent admits the pod there,
# it has also applied the pod's own egress rules, so a refusal after that is the policy's.
PROBE = """
import socket, sys, time
def attempt(host, port, window):
    deadline = time.monotonic() + window
    while True:
        try:
            socket.create_connection((host, port), timeout=2).close()
            return "connected"
        except OSError as exc:
            if time.monotonic() > deadline:
                return f"blocked: {type(exc).__name__} {exc}"
            time.sleep(0.5)
redis, window, target = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
if target:
    first = attempt(redis, 6379, 120)
    print(attempt(target[0], int(target[1]), window) if first == "connected" else "redis " + first)
else:
    print(attempt(redis, 6379, window))
"""


def probe(rel: Release, name: str, labels: dict[str, str], window_s: int, target: str = "") -> str:
    """Runs PROBE against the release's Redis Service, or `target` (HOST:PORT), in a pod with
    `labels`; its output."""
    rel.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                "containers": [
                    {
                        "name": "probe",
                        "image": rel.images.worker.ref,
                        "imagePullPolicy": "IfNotPresent",
                        "command": [
                            "python3",
                            "-c",
                            PROBE,
                            rel.redis_name,
                            str(window_s),
                            *(target.split(":") if target else []),
                        ],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        }
    )

    def finished() -> bool:
        pod = rel.kube.find("pod", name) or {}
        fail_if_hopeless(pod)
        return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")

    wait_until(f"probe pod {name} to finish", finished, timeout=window_s + 120, interval=1.0)
    return rel.kube("logs", name).strip()


def test_redis_admits_only_the_release_pods(release: Releases, namespace: Kube) -> None:
    rel = release("guarded")
    rel.install({"items": ["p1", "p2", "p3"], "worker": {"parallelism": 1}})
    rel.wait()  # the seeder and the worker reached Redis through the policy
    assert namespace("get", "networkpolicy", rel.redis_name, "-o", "name")

    assert probe(rel, "as-cli", rel.pod_labels("cli"), window_s=90) == "connected"
    # The same probe, image and Service, without the release's labels: refused throughout.
    refused = probe(rel, "unlabelled", {"app": "intruder"}, window_s=20)
    assert refused.startswith("blocked: "), refused


def serve_items(kube: Kube, image: str, text: str) -> str:
    """A web server pod and Service in the namespace serving `text` as /items.txt; its URL."""
    kube("create", "configmap", "items-web", f"--from-literal=items.txt={text}")
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "items-web", "labels": {"app": "items-web"}},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                "containers": [
                    {
                        "name": "web",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python3", "-m", "http.server", "8080", "-d", "/srv"],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                        "securityContext": restricted,
                        "volumeMounts": [{"name": "items", "mountPath": "/srv"}],
                    }
                ],
                "volumes": [{"name": "items", "configMap": {"name": "items-web"}}],
            },
        }
    )
    kube("expose", "pod", "items-web", "--port", "8080")
    kube("wait", "--for=condition=Ready", "pod/items-web", "--timeout=180s")
    return "http://items-web:8080/items.txt"


def test_seeder_reaches_the_items_store_only_when_it_reads_one(
    release: Releases, namespace: Kube
) -> None:
    """Issue 13: the seeder's egress is Redis and DNS, plus the items' store when the run
    reads `itemsUrl` or `itemsList`: the same web server that a run seeds from is out of
    reach for another release's seeder, whose items come from its values."""
    from_web = release("fromweb")
    url = serve_items(namespace, from_web.images.worker.ref, "w1\nw2\nw3\n")
    from_web.install({"itemsUrl": url, "worker": {"parallelism": 1, "demoSleep": 0}})
    from_web.wait()  # the seeder read the items through its policy
    assert_clean(from_web.status(), total=3)
    assert worked_on(from_web.worker_logs()) == Counter(["w1", "w2", "w3"])

    local = release("local")
    local.install({"items": ["l1"], "worker": {"parallelism": 1, "demoSleep": 0}})
    local.wait()
    assert namespace("get", "networkpolicy", f"{local.fullname}-seed", "-o", "name")
    target = "items-web:8080"
    refused = probe(local, "local-seed", local.pod_labels("seed"), window_s=20, target=target)
    assert refused.startswith("blocked: "), refused
    # The same probe with the labels of the seeder that reads from the server.
    as_web_seeder = from_web.pod_labels("seed")
    assert probe(from_web, "web-seed", as_web_seeder, window_s=60, target=target) == "connected"
