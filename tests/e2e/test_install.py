"""Installing: bad values are refused, a release can use another's Redis (issue 5,
scenarios 8 and 10), and the chart installs from an OCI registry and uninstalls without a
trace (issue 10)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from tests.e2e.checks import assert_clean, worked_on
from tests.e2e.kube import Kube, setting
from tests.e2e.release import Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SCHEMA = "values don't meet the specifications of the schema"


@pytest.mark.parametrize(
    ("values", "messages"),
    [
        pytest.param(
            {"worker": {"handler": "bogus"}},
            [SCHEMA, "/worker/handler", "must be one of 'demo', 'command', 'python'"],
            id="enum",
        ),
        pytest.param(
            {"worker": {"parallelism": 0}}, [SCHEMA, "/worker/parallelism", "minimum"], id="minimum"
        ),
        pytest.param(
            {"wrkr": {"parallelism": 2}}, [SCHEMA, "'wrkr' not allowed"], id="unknown-key"
        ),
        pytest.param(
            {"items": ["a"], "itemRange": {"start": 0, "end": 3}},
            ["mutually exclusive", "items, itemRange"],
            id="cross-field",
        ),
    ],
)
def test_bad_values_rejected(
    release: Releases, namespace: Kube, values: dict[str, object], messages: list[str]
) -> None:
    """Scenario 8: `helm install` refuses invalid values with the chart's message; nothing
    is created."""
    rel = release("bad")
    result = rel.install(values, check=False)

    assert result.returncode != 0, result.stdout
    for message in messages:
        assert message in result.stderr, result.stderr
    assert rel.helm("list", "--all", "--short").stdout.strip() == ""
    leftovers = namespace(
        "get",
        "all,configmaps,secrets,serviceaccounts,pvc,networkpolicies",
        "-l",
        f"app.kubernetes.io/instance={rel.name}",
        "-o",
        "name",
    )
    assert leftovers == ""


def test_external_redis(release: Releases, namespace: Kube) -> None:
    """Scenario 10: a release with redis.enabled=false uses the first release's Redis; each
    run keeps its own counts."""
    host, guest = release("host"), release("guest")
    # The host's NetworkPolicy admits only its own pods unless told otherwise.
    guest_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": guest.name}}}
    host.install(
        {
            "items": ["h1", "h2", "h3"],
            "worker": {"parallelism": 1, "demoSleep": 0.2},
            "networkPolicy": {"extraIngressFrom": [guest_pods]},
        }
    )
    host.wait()
    guest.install(
        {
            "items": ["g1", "g2", "g3", "g4"],
            "worker": {"parallelism": 2, "demoSleep": 0.2},
            "redis": {"enabled": False},
            "externalRedis": {
                "host": f"{host.redis_name}.{namespace.namespace}.svc.cluster.local",
                "existingSecret": host.redis_name,
            },
        }
    )
    guest.wait()

    assert not namespace("get", "deployments", "-l", guest.selector("redis"), "-o", "name")
    assert_clean(guest.status(), total=4)
    assert_clean(host.status(), total=3)
    runs = sorted(host.redis_cli("--scan", "--pattern", "wq:*:meta"))
    assert runs == [f"wq:{{{guest.run_id()}}}:meta", f"wq:{{{host.run_id()}}}:meta"]
    assert sorted(host.done_by(guest.run_id())) == list(range(4))
    assert sorted(host.done_by()) == list(range(3))
    assert worked_on(guest.worker_logs()) == Counter(["g1", "g2", "g3", "g4"])


# What a namespace holds before any release: its default ServiceAccount and CA bundle.
NAMESPACE_DEFAULTS = {"serviceaccount/default", "configmap/kube-root-ca.crt"}
KINDS = "all,configmaps,secrets,serviceaccounts,pvc,networkpolicies,roles,rolebindings"


def test_install_from_oci_registry(release: Releases, namespace: Kube) -> None:
    """The chart as users get it: `helm install oci://...` from the cluster's local registry,
    its images pulled from there; after a passing `helm test`, `helm uninstall` leaves nothing
    of the release in the namespace (the test pod included)."""
    rel = release("oci")
    version = setting("CHART_VERSION")
    chart = (setting("CHART_REF"), "--version", version, "--plain-http")
    rel.install({"items": ["o1", "o2", "o3"], "worker": {"parallelism": 2}}, chart=chart)
    rel.wait()

    (listed,) = json.loads(rel.helm("list", "-o", "json").stdout)
    assert listed["chart"] == f"wq-{version}", listed
    for pod in namespace.items("pods", f"app.kubernetes.io/instance={rel.name}"):
        for status in pod["status"]["containerStatuses"]:
            repository = status["image"].rpartition(":")[0]
            assert repository.startswith("localhost:"), status["image"]
            assert status["imageID"].startswith(f"{repository}@sha256:"), status["imageID"]
    tested = rel.helm("test", rel.name, "--timeout", "3m")
    assert re.search(r"^Phase:\s+Succeeded$", tested.stdout, re.MULTILINE), tested.stdout

    rel.helm("uninstall", rel.name, "--wait", "--timeout", "3m")

    # Pods of deleted Jobs go in the background: wait, then name what stayed.
    seen: list[set[str]] = []

    def nothing_left() -> bool:
        seen.append(set(namespace("get", KINDS, "-o", "name").split()) - NAMESPACE_DEFAULTS)
        return not seen[-1]

    wait_until(lambda: f"nothing left in the namespace; left: {seen[-1]}", nothing_left, 120, 1.0)
