"""Values the chart must refuse, each with a message that says what is wrong.

Shapes and bounds are refused by values.schema.json; rules across values by wq.validateValues.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.helmlib import CHART, Helm

SCHEMA = "values don't meet the specifications of the schema"
VALIDATION = "VALUES VALIDATION:"
BIG = "x" * 1000
INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["worker.parallelism=0"], "at '/worker/parallelism': minimum: got 0, want 1"),
        (["worker.parallelism=-3"], "at '/worker/parallelism': minimum: got -3, want 1"),
        (["worker.parallelism=two"], "at '/worker/parallelism': got string, want integer"),
        (
            ["worker.handler=bogus"],
            "at '/worker/handler': value must be one of 'demo', 'command', 'python'",
        ),
        (["items=apple"], "at '/items': got string, want array"),
        (["paralellism=3"], "additional properties 'paralellism' not allowed"),
        (["worker.paralellism=3"], "additional properties 'paralellism' not allowed"),
        (["itemRange.start=0"], "missing property 'end'"),
        (["itemRange.start=0", "itemRange.end=9", "itemRange.step=0"], "at '/itemRange/step'"),
        (
            ["itemRange.start=a", "itemRange.end=9"],
            "at '/itemRange/start': got string, want integer",
        ),
        (["runId=bad/id"], "at '/runId'"),
        (["shards=0", "itemRange.start=0", "itemRange.end=9"], "at '/shards': minimum: got 0"),
        (["shards=two"], "at '/shards': got string, want integer"),
        (["runId=-starts-with-dash"], "at '/runId'"),
        (["runId=" + "a" * 57], "at '/runId'"),
        (["image.pullPolicy=Sometimes"], "at '/image/pullPolicy': value must be one of"),
        (["image.digest=latest"], "at '/image/digest'"),
        (["redis.port=70000"], "at '/redis/port': maximum: got 70,000, want 65,535"),
        (["redis.service.type=Ingress"], "at '/redis/service/type': value must be one of"),
        (["redis.persistence.size=lots"], "at '/redis/persistence/size'"),
        (
            ["redis.appendOnly.fsync=sometimes"],
            "at '/redis/appendOnly/fsync': value must be one of",
        ),
        (["redis.appendOnly.fsync=everySec"], "at '/redis/appendOnly/fsync': value must be one of"),
        (
            ["redis.appendOnly.enabled=on"],
            "at '/redis/appendOnly/enabled': got string, want boolean",
        ),
        (["redis.appendOnly.fsnyc=no"], "additional properties 'fsnyc' not allowed"),
        (
            ["redis.persistence.volumePermissions.enabled=yes"],
            "at '/redis/persistence/volumePermissions/enabled': got string, want boolean",
        ),
        (
            ["redis.persistence.volumePermissions.image=busybox"],
            "additional properties 'image' not allowed",
        ),
        (["redis.enabled=maybe"], "at '/redis/enabled': got string, want boolean"),
        (["externalRedis.url=http://redis:6379"], "at '/externalRedis/url'"),
        (["externalRedis.tlsCaSecret=Bad_Name"], "at '/externalRedis/tlsCaSecret'"),
        (["externalRedis.tlsCaSecretKey=a/b"], "at '/externalRedis/tlsCaSecretKey'"),
        (["worker.python=notamodule"], "at '/worker/python'"),
        (["worker.ttlSecondsAfterFinished=-1"], "at '/worker/ttlSecondsAfterFinished'"),
        (["worker.activeDeadlineSeconds=0"], "at '/worker/activeDeadlineSeconds'"),
        (["worker.maxAttempts=0"], "at '/worker/maxAttempts': minimum: got 0, want 1"),
        (["worker.concurrency=0"], "at '/worker/concurrency': minimum: got 0, want 1"),
        (["worker.lease=0"], "at '/worker/lease'"),
        (["worker.resources.request.cpu=1"], "additional properties 'request' not allowed"),
        (["seed.activeDeadlineSeconds=0"], "at '/seed/activeDeadlineSeconds'"),
        (["networkPolicy.enabled=yes"], "at '/networkPolicy/enabled': got string, want boolean"),
        (["itemsUrl=ftp://host/items.txt"], "at '/itemsUrl'"),
        (["itemsUrl=bucket/items.txt"], "at '/itemsUrl'"),
        (["itemsList=https://host/*.txt"], "at '/itemsList'"),
        (["itemsFormat=csv"], "at '/itemsFormat': value must be one of"),
        (["seed.serviceAccount.name=Bad_Name"], "at '/seed/serviceAccount/name'"),
        (["seed.serviceAccount.role=x"], "additional properties 'role' not allowed"),
        (["metrics.port=0"], "at '/metrics/port': minimum: got 0, want 1"),
        (["metrics.port=65536"], "at '/metrics/port': maximum: got 65,536, want 65,535"),
        (["metrics.enable=true"], "additional properties 'enable' not allowed"),
        (["metrics.ui.enabled=yes"], "at '/metrics/ui/enabled': got string, want boolean"),
        (["metrics.ui.port=1"], "additional properties 'port' not allowed"),
        (["metrics.serviceMonitor.enabeld=true"], "additional properties 'enabeld' not allowed"),
        (["metrics.serviceMonitor.interval=30"], "at '/metrics/serviceMonitor/interval'"),
        (["metrics.serviceMonitor.interval=30 s"], "at '/metrics/serviceMonitor/interval'"),
        (["metrics.serviceMonitor.scrapeTimeout=1m1h"], "'/metrics/serviceMonitor/scrapeTimeout'"),
        (["metrics.prometheusRule.stalledWindow="], "at '/metrics/prometheusRule/stalledWindow'"),
        (["metrics.prometheusRule.stalledFor=5 minutes"], "'/metrics/prometheusRule/stalledFor'"),
        (["metrics.prometheusRule.severity=page"], "additional properties 'severity' not allowed"),
        # Helm names no path for a bad key, only the key.
        (["metrics.prometheusRule.alertLabels.__name__=x"], "invalid propertyName '__name__'"),
        (["metrics.prometheusRule.alertLabels.a-b=x"], "invalid propertyName 'a-b'"),
        (["metrics.prometheusRule.additionalLabels.a=b c"], "/prometheusRule/additionalLabels/a'"),
        (["metrics.dashboard.labelKey=has space"], "at '/metrics/dashboard/labelKey'"),
        (["metrics.dashboard.namespace=Not_A_Namespace"], "at '/metrics/dashboard/namespace'"),
        (["metrics.networkPolicy.from[0]=x"], "at '/metrics/networkPolicy/from/0'"),
        (["metrics.readinessProbe.httpGet.path=/"], "additional properties 'httpGet' not allowed"),
    ],
)
def test_schema_rejects(helm: Helm, sets: list[str], message: str) -> None:
    err = helm.render_error(sets=sets)
    assert SCHEMA in err
    assert message in err


# Range items are exact signed 64-bit integers: bounds of +-(2**63 - 1), as `wq seed --range`.
@pytest.mark.parametrize(
    ("item_range", "message"),
    [
        # Helm shows these numbers rounded, in scientific notation, but compares them exactly.
        ({"start": 0, "end": 2**63}, "at '/itemRange/end': maximum"),
        ({"start": -(2**63), "end": 0}, "at '/itemRange/start': minimum"),
        ({"start": 0, "end": 9, "step": 2**63}, "at '/itemRange/step': maximum"),
        ({"start": 0, "end": 10**19}, "at '/itemRange/end': maximum: got 1\u00d710\u00b9\u2079"),
        ({"start": 0, "end": 1e300}, "at '/itemRange/end': maximum"),
    ],
)
def test_schema_rejects_item_ranges_beyond_64_bits(
    helm: Helm, item_range: dict[str, Any], message: str
) -> None:
    err = helm.render_error({"itemRange": item_range})
    assert SCHEMA in err
    assert message in err


def test_schema_rejects_64_bit_overflow_from_set_flags(helm: Helm) -> None:
    err = helm.render_error(sets=["itemRange.start=0", f"itemRange.end={2**63}"])
    assert SCHEMA in err
    assert "at '/itemRange/end'" in err


def test_schema_rejects_fractional_parallelism(helm: Helm) -> None:
    err = helm.render_error({"worker": {"parallelism": 2.5}})
    assert "at '/worker/parallelism': got number, want integer" in err


def test_schema_rejects_unknown_item_range_key(helm: Helm) -> None:
    err = helm.render_error({"itemRange": {"start": 0, "stop": 10}})
    assert "missing property 'end'" in err
    assert "additional properties 'stop' not allowed" in err


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"items": ["a"], "itemRange": {"start": 0, "end": 5}},
            "items, itemsFile, itemsUrl, itemsList and itemRange are mutually exclusive: set "
            "only one (now set: items, itemRange).",
        ),
        (
            {"items": ["a"], "itemsFile": "b\n"},
            "mutually exclusive: set only one (now set: items, itemsFile).",
        ),
        (
            {"itemsFile": "b\n", "itemRange": {"start": 0, "end": 5}},
            "mutually exclusive: set only one (now set: itemsFile, itemRange).",
        ),
        (
            {"itemsUrl": "s3://b/i.txt", "itemsList": "s3://b/*", "items": ["a"]},
            "mutually exclusive: set only one (now set: items, itemsUrl, itemsList).",
        ),
        (
            {"itemsFormat": "jsonl"},
            "itemsFormat (jsonl) is the format of itemsUrl: set itemsUrl",
        ),
        (
            {"itemsUrl": "https://user:s3cret@example.org/items.txt"},
            "itemsUrl must not contain credentials (user:password@)",
        ),
        (
            {"itemsList": "s3://key:secret@bucket/*"},
            "itemsList must not contain credentials",
        ),
        (
            {
                "itemsUrl": "s3://b/i.txt",
                "seed": {
                    "extraEnv": [
                        {"name": "AWS_ACCESS_KEY_ID", "value": "AKIA"},
                        {"name": "AWS_SECRET_ACCESS_KEY", "value": "s3cret"},
                        {"name": "AWS_REGION", "value": "eu-west-1"},
                    ]
                },
            },
            "seed.extraEnv sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY as a plain value",
        ),
        (
            {"seed": {"enabled": False}, "itemsUrl": "s3://b/i.txt"},
            "leave items, itemsFile, itemsUrl, itemsList and itemRange empty",
        ),
        (
            {"itemRange": {"start": 10, "end": 5}},
            "itemRange.end (5) is below itemRange.start (10)",
        ),
        (
            {"itemRange": {"start": 3, "end": 3}},
            "itemRange.end equals itemRange.start (3): the range holds no items",
        ),
        (
            # 2**53 + 1 reaches Helm as the float 2**53: the run would not have these items.
            {"itemRange": {"start": 0, "end": 2**53 + 1}},
            "itemRange.end (9007199254740992) is beyond 2^53, where a number from a values file "
            "is not exact (Helm reads it as floating point): pass it with --set "
            "itemRange.end=...",
        ),
        (
            {"itemRange": {"start": -(2**62), "end": 0}},
            "itemRange.start (-4611686018427387904) is beyond 2^53",
        ),
        (
            {"itemRange": {"start": 0, "end": 10, "step": 2**60}},
            "itemRange.step (1152921504606846976) is beyond 2^53",
        ),
        (
            {"items": [BIG] * 1100},
            "items is 1103301 bytes, over the 1000000 bytes a ConfigMap can carry. Put the items "
            "where the seeder can stream them from and set itemsUrl",
        ),
        (
            {"itemsFile": (BIG + "\n") * 1000},
            "itemsFile is 1001000 bytes, over the 1000000 bytes a ConfigMap can carry. "
            "Put the items where the seeder can stream them from and set itemsUrl",
        ),
        (
            {"redis": {"enabled": False}},
            "redis.enabled=false needs externalRedis.url (redis://host:port/db or rediss://...) "
            "or externalRedis.host.",
        ),
        (
            {
                "redis": {"enabled": False},
                "externalRedis": {"url": "redis://a:6379/0", "host": "a"},
            },
            "set externalRedis.url or externalRedis.host, not both.",
        ),
        (
            {"redis": {"enabled": False}, "externalRedis": {"url": "redis://:s3cret@a:6379/0"}},
            "externalRedis.url must not contain a password",
        ),
        (
            {"redis": {"enabled": False}, "externalRedis": {"url": "rediss://u:s3cret@a:6379/0"}},
            "externalRedis.url must not contain a password",
        ),
        (
            {"externalRedis": {"url": "redis://a:6379/0"}},
            "externalRedis is only used with redis.enabled=false",
        ),
        (
            {"externalRedis": {"tlsCaSecret": "ca"}},
            "externalRedis is only used with redis.enabled=false",
        ),
        (
            {"redis": {"enabled": False}, "externalRedis": {"host": "a", "tlsCaSecret": "ca"}},
            "externalRedis.tlsCaSecret is for TLS: set externalRedis.tls=true",
        ),
        (
            {
                "redis": {"enabled": False},
                "externalRedis": {"url": "redis://a:6379/0", "tls": True, "tlsCaSecret": "ca"},
            },
            "externalRedis.tlsCaSecret is for TLS: externalRedis.url must be rediss://",
        ),
        (
            {"redis": {"persistence": {"enabled": True}, "appendOnly": {"enabled": False}}},
            "redis.persistence.enabled keeps Redis' append-only file on a volume: it needs "
            "redis.appendOnly.enabled=true.",
        ),
        (
            {
                "redis": {
                    "persistence": {"enabled": True, "volumePermissions": {"enabled": True}},
                    "podSecurityContext": {"runAsUser": None},
                }
            },
            "redis.persistence.volumePermissions gives the volume to Redis' user: set "
            "redis.podSecurityContext.runAsUser (not root, e.g. 999).",
        ),
        (
            {
                "redis": {
                    "persistence": {"enabled": True, "volumePermissions": {"enabled": True}},
                    "podSecurityContext": {"runAsUser": 0},
                }
            },
            "set redis.podSecurityContext.runAsUser (not root, e.g. 999).",
        ),
        (
            {
                "redis": {
                    "persistence": {"enabled": True, "volumePermissions": {"enabled": True}},
                    "podSecurityContext": {"fsGroup": None, "runAsGroup": None},
                }
            },
            "redis.persistence.volumePermissions gives the volume to Redis' group: set "
            "redis.podSecurityContext.fsGroup or runAsGroup (not 0, e.g. 999).",
        ),
        (
            {"worker": {"handler": "command"}},
            "worker.handler=command needs worker.command",
        ),
        (
            {"worker": {"handler": "python"}},
            "worker.handler=python needs worker.python (module:function).",
        ),
        (
            {"worker": {"command": ["echo", "{{ item }}"]}},
            "worker.command is only used with worker.handler=command (now: demo).",
        ),
        (
            {"worker": {"python": "m:f", "handler": "command", "command": ["x"]}},
            "worker.python is only used with worker.handler=python (now: command).",
        ),
        (
            {"worker": {"captureStdout": True, "handler": "python", "python": "m:f"}},
            "worker.captureStdout is only used with worker.handler=command (now: python).",
        ),
        (
            {"seed": {"enabled": False}, "items": ["a"]},
            "seed.enabled=false means the run is seeded from outside",
        ),
        (
            {"metrics": {"ui": {"enabled": True}}},
            "metrics.ui.enabled needs metrics.enabled=true: it is for this release's exporter.",
        ),
        (
            {"metrics": {"serviceMonitor": {"enabled": True}}},
            "metrics.serviceMonitor.enabled needs metrics.enabled=true: it is for this release's "
            "exporter.",
        ),
        (
            {"metrics": {"prometheusRule": {"enabled": True}}},
            "metrics.prometheusRule.enabled needs metrics.enabled=true",
        ),
        (
            {"metrics": {"enabled": True, "serviceMonitor": {"interval": "5s"}}},
            "metrics.serviceMonitor.scrapeTimeout (10s) is longer than "
            "metrics.serviceMonitor.interval (5s): Prometheus refuses that.",
        ),
        (
            {"metrics": {"serviceMonitor": {"interval": "1m", "scrapeTimeout": "1m500ms"}}},
            "scrapeTimeout (1m500ms) is longer than metrics.serviceMonitor.interval (1m)",
        ),
        (
            {"metrics": {"prometheusRule": {"stalledWindow": "0m"}}},
            "metrics.prometheusRule.stalledWindow (0m) must be above zero",
        ),
        (
            {"metrics": {"dashboard": {"labelKey": "app.kubernetes.io/component"}}},
            "metrics.dashboard.labelKey app.kubernetes.io/component is a label the chart sets "
            "itself",
        ),
        (
            {"metrics": {"dashboard": {"labelKey": "helm.sh/chart"}}},
            "metrics.dashboard.labelKey helm.sh/chart is a label the chart sets itself",
        ),
    ],
)
def test_validate_values_rejects(helm: Helm, values: dict[str, Any], message: str) -> None:
    err = helm.render_error(values)
    assert VALIDATION in err
    assert message in err


def test_validate_values_reports_every_problem_at_once(helm: Helm) -> None:
    values = {
        "items": ["a"],
        "itemRange": {"start": 5, "end": 1},
        "redis": {"enabled": False},
        "worker": {"handler": "python"},
    }
    err = helm.render_error(values)
    assert err.count(VALIDATION) == 1
    for message in (
        "mutually exclusive",
        "itemRange.end (1) is below itemRange.start (5)",
        "redis.enabled=false needs externalRedis.url",
        "worker.handler=python needs worker.python",
    ):
        assert message in err
    assert len([line for line in err.splitlines() if line.startswith("wq: ")]) == 4


def test_scrape_timeout_equal_to_interval_is_accepted(helm: Helm) -> None:
    values = {"metrics": {"serviceMonitor": {"interval": "1h", "scrapeTimeout": "60m"}}}
    assert helm.render(values).manifests


def test_kube_version_below_1_31_is_refused(helm: Helm) -> None:
    result = helm.run("template", "wq", str(CHART), "--kube-version", "1.30.9", check=False)
    assert result.returncode != 0
    assert "chart requires kubeVersion: >=1.31.0-0" in result.stderr
