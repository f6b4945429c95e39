"""A sharded run (issue 25) on kind, against a Redis Cluster of three primaries running in the
cluster (a StatefulSet of the image the chart's Redis uses, joined by `redis-cli --cluster
create`): the chart's `shards` puts a shard on each node, a worker pod killed mid-run costs
nothing, and the run reads back as one; listed items too."""

from __future__ import annotations

import pytest

from tests.e2e.kube import Kube
from tests.e2e.release import Images, Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

NODES = 3
ITEMS = 30_000
LISTED = 3_000  # three stripes, the last one short
NAME = "redis-cluster"


def redis_cluster(kube: Kube, images: Images) -> list[str]:
    """Starts the Redis Cluster; the pod IPs of its nodes once it is ok."""
    labels = {"app.kubernetes.io/name": NAME}
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME},
            "spec": {
                "clusterIP": "None",  # the node addresses themselves: the client finds the rest
                "selector": labels,
                "ports": [{"name": "redis", "port": 6379}],
            },
        }
    )
    kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": NAME},
            "spec": {
                "serviceName": NAME,
                "replicas": NODES,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "redis",
                                "image": images.redis.ref,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["redis-server"],
                                "args": [
                                    *("--cluster-enabled", "yes", "--protected-mode", "no"),
                                    *("--cluster-config-file", "/data/nodes.conf"),
                                    *("--save", "", "--appendonly", "no", "--dir", "/data"),
                                ],
                                "ports": [{"containerPort": 6379}, {"containerPort": 16379}],
                                "readinessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 1},
                                "resources": {"requests": {"cpu": "10m"}},
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                    },
                },
            },
        }
    )
    kube("rollout", "status", f"statefulset/{NAME}", "--timeout=3m")
    pods = [f"{NAME}-{n}" for n in range(NODES)]
    ips = [kube.get("pod", pod)["status"]["podIP"] for pod in pods]
    first = f"pod/{pods[0]}"
    kube(
        "exec",
        first,
        "--",
        "redis-cli",
        "--cluster",
        "create",
        *(f"{ip}:6379" for ip in ips),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
    )

    def ok() -> bool:
        return all(
            "cluster_state:ok" in kube("exec", f"pod/{pod}", "--", "redis-cli", "cluster", "info")
            for pod in pods
        )

    wait_until("the Redis Cluster to be ok on every node", ok, 120, interval=1.0)
    return pods


def test_a_sharded_run_on_a_redis_cluster_in_kind(
    release: Releases, namespace: Kube, images: Images
) -> None:
    pods = redis_cluster(namespace, images)
    rel = release("sharded")
    rel.install(
        {
            "itemRange": {"start": 0, "end": ITEMS},
            "shards": NODES,
            "redis": {"enabled": False},
            "externalRedis": {
                "host": f"{NAME}.{namespace.namespace}.svc.cluster.local",
                "cluster": True,
            },
            # Items of 5 ms: a run long enough to kill a worker pod in the middle of it.
            "worker": {"parallelism": NODES, "handler": "demo", "demoSleep": 0.005},
        }
    )

    # A shard on each node, the run's directory beside one of them.
    def metas() -> list[list[str]]:
        return [
            namespace(
                "exec", f"pod/{pod}", "--", "redis-cli", "--scan", "--pattern", "wq:*:meta"
            ).split()
            for pod in pods
        ]

    seen = wait_until("the run seeded on every node", lambda: all(metas()) and metas(), 180, 1.0)
    run = rel.run_id()
    assert sorted(len(m) for m in seen) == [1, 1, 2], seen
    assert sum(m.count(f"wq:{{{run}}}:meta") for m in seen) == 1, seen

    # A worker pod killed mid-run, as a node that goes away would: its leases come back.
    wait_until("a tenth of the run done", lambda: rel.status()["done"] >= ITEMS // 10, 240, 1.0)
    victim = namespace.pod_names(rel.selector("worker"))[0]
    namespace("delete", "pod", victim, "--grace-period=0", "--force", "--wait=false")
    rel.wait(timeout=420, expect="Complete")

    status = rel.status()
    assert (status["state"], status["shards"], status["done"], status["dead"]) == (
        "drained",
        NODES,
        ITEMS,
        0,
    ), status
    checked = rel.wq("status", "--check")
    assert f"every position accounted for once: {ITEMS} done + 0 dead = {ITEMS} total" in checked
    report = rel.report("--state", "done")
    assert [r["item"] for r in report] == list(range(ITEMS))

    # Listed items (the chart's `items`, through its ConfigMap) are dealt to the same nodes a
    # stripe at a time, and read back as one run too.
    listed = release("listed")
    external = {"host": f"{NAME}.{namespace.namespace}.svc.cluster.local", "cluster": True}
    items = [f"item-{n}" for n in range(LISTED)]
    listed.install(
        {
            "items": items,
            "shards": NODES,
            "redis": {"enabled": False},
            "externalRedis": external,
            "worker": {"parallelism": 2, "handler": "demo", "demoSleep": 0},
        }
    )
    listed.wait(timeout=300, expect="Complete")
    status = listed.status()
    assert (status["state"], status["shards"], status["done"]) == ("drained", NODES, LISTED)
    assert [r["item"] for r in listed.report()] == items
