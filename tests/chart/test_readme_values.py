"""The chart values the README shows, as a user would copy them into a values file: the real
chart renders each (values.schema.json and the chart's own checks accept it) into what the
README says it makes."""

from collections.abc import Callable

import yaml

from tests.chart.helmlib import MONITORING_APIS, Helm, Manifest, Rendered
from tests.docs.readme import readme_blocks

THIS = "tests/chart/test_readme_values.py"


def container(job: Manifest) -> Manifest:
    found: Manifest = job["spec"]["template"]["spec"]["containers"][0]
    return found


def items_from_a_url(r: Rendered) -> None:
    seed = r.one("Job", "seed")
    assert container(seed)["args"] == [
        "seed",
        *("--items-url", "s3://my-bucket/runs/2026-11-27/items.jsonl.gz", "--progressive"),
    ]
    assert container(seed)["envFrom"] == [{"secretRef": {"name": "items-bucket-keys"}}]
    accounts = {a["metadata"]["name"]: a for a in r.all("ServiceAccount")}
    assert "eks.amazonaws.com/role-arn" in accounts["wq-seed"]["metadata"]["annotations"]


def monitoring(r: Rendered) -> None:
    assert r.one("Deployment", "exporter")
    assert r.all("ServiceMonitor")
    assert r.all("PrometheusRule")
    assert r.one("ConfigMap", "dashboard")["metadata"]["labels"]["grafana_dashboard"] == "1"


def autoscaling(r: Rendered) -> None:
    assert r.one("Job", "worker")["spec"]["parallelism"] == 4
    args = container(r.one("Job", "autoscaler"))["args"]
    assert args[:1] == ["autoscale"]


# What each block makes, by the first line of the block.
EXPECTED: dict[str, Callable[[Rendered], None]] = {
    "itemsUrl: s3://my-bucket/runs/2026-11-27/items.jsonl.gz": items_from_a_url,
    "metrics:": monitoring,
    "worker:": autoscaling,
}


def test_the_readmes_values_render_into_what_it_says(helm: Helm) -> None:
    tested = [b for b in readme_blocks() if b.tested_by == THIS]
    firsts = [b.body.splitlines()[0].split("  #")[0].strip() for b in tested]
    assert sorted(firsts) == sorted(EXPECTED), "blocks marked as tested here, and those checked"
    for block, first in zip(tested, firsts, strict=True):
        values = yaml.safe_load(block.body)
        EXPECTED[first](helm.render(values, api_versions=MONITORING_APIS))
