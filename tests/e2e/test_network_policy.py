"""NetworkPolicy enforced for real (issue 10): the chart's policy lets the release's own wq
pods reach Redis and refuses a pod without their labels. The cluster enforces policy as users'
clusters do: kind's own networking on its official node images, kube-router's policy controller
on the node image built here (scripts/kind/netpol-up.sh)."""

from __future__ import annotations

import pytest

from tests.e2e.kube import Kube, fail_if_hopeless
from tests.e2e.release import Release, Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# Tries to connect to HOST:6379 until it succeeds or WINDOW seconds have passed, and says how
# it went. Trying for a while matters both ways: the policy agent admits a new pod only once it
# has seen the pod's address, and a refused pod must stay refused for the whole window.
PROBE = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        socket.create_connection((sys.argv[1], 6379), timeout=2).close()
    except OSError as exc:
        if time.monotonic() > deadline:
            print("blocked:", type(exc).__name__, exc)
            break
        time.sleep(0.5)
    else:
        print("connected")
        break
"""


def probe(rel: Release, name: str, labels: dict[str, str], window_s: int) -> str:
    """Runs PROBE against the release's Redis Service in a pod with `labels`; its output."""
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
                        "command": ["python3", "-c", PROBE, rel.redis_name, str(window_s)],
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

    cli = dict(label.split("=", 1) for label in rel.cli_labels().split(","))
    assert probe(rel, "as-cli", cli, window_s=90) == "connected"
    # The same probe, image and Service, without the release's labels: refused throughout.
    refused = probe(rel, "unlabelled", {"app": "intruder"}, window_s=20)
    assert refused.startswith("blocked: "), refused
