"""Fixtures of the e2e tests, chained image -> cluster -> namespace -> release.

`make e2e` brings the kind cluster up, builds the images and pushes them with the chart to the
cluster's local registry, then runs these tests with KUBECONFIG set to the cluster's own file,
WORKER_IMAGE and REDIS_IMAGE to the references the cluster pulls (localhost:PORT/...:TAG),
CHART_REF and CHART_VERSION to the pushed chart, and KIND_CLUSTER to the cluster's name.
Each test gets its own namespace (deleted afterwards); when a test fails, the namespace's
objects, descriptions, pod logs, events and `wq status` of every release are added to its
report. Durations go to the terminal summary and are appended to
_artifacts/e2e-timings.txt.

`make e2e` runs the tests side by side in pytest-xdist workers (scripts/e2e.sh says how many):
a session fixture runs once in each worker, and the summary is made in the controller, from
the reports the workers send it (a test's measurements travel in its user_properties).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e.kube import ARTIFACTS, Kube, node_names, setting, wait_until
from tests.e2e.release import Image, Images, Releases, registry_has

TIMINGS_FILE = ARTIFACTS / "e2e-timings.txt"
MEASURED = "measured"  # the user_properties key of record_timing's lines
# Scenario durations (setup + call + teardown) and named measurements, for the summary.
durations: dict[str, float] = {}
measurements: list[str] = []
SUITE_STARTED = time.monotonic()  # this conftest is imported when collection starts


@pytest.fixture(scope="session")
def images() -> Images:
    """The images as the cluster pulls them from its local registry, where
    scripts/cluster-images.sh pushed them (`make e2e` runs it)."""
    found = Images(
        worker=Image.parse(setting("WORKER_IMAGE")),
        redis=Image.parse(setting("REDIS_IMAGE")),
    )
    for image in (found.worker, found.redis):
        if not registry_has(image):
            pytest.fail(f"the registry has no {image.ref}: run `make e2e`", pytrace=False)
    return found


@pytest.fixture(scope="session")
def cluster(images: Images) -> str:
    """The kind cluster from KUBECONFIG, its node Ready."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or not Path(kubeconfig).is_file():
        pytest.fail("KUBECONFIG must name the kind cluster's file: run `make e2e`", pytrace=False)
    cluster_wide = Kube("default")
    cluster_wide("wait", "--for=condition=Ready", "node", "--all", "--timeout=120s")
    return os.environ.get("KIND_CLUSTER", "wq-e2e")


@pytest.fixture
def namespace(cluster: str, request: pytest.FixtureRequest) -> Iterator[Kube]:
    """A fresh namespace for one test, deleted (in the background) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    kube = Kube(f"e2e-{slug}-{uuid.uuid4().hex[:4]}")
    kube("create", "namespace", kube.namespace)
    wait_until(
        "the default ServiceAccount",
        lambda: kube("get", "sa", "default", check=False) or None,
        timeout=60,
        interval=1.0,
    )
    yield kube
    kube("delete", "namespace", kube.namespace, "--wait=false", check=False)


@pytest.fixture
def release(namespace: Kube, images: Images, tmp_path: Path) -> Releases:
    """Makes Release objects in the test's namespace; the test installs them. The namespace's
    deletion removes them all."""
    return Releases(namespace, images, tmp_path)


@pytest.fixture
def node(cluster: str) -> str:
    """The (only) node of the kind cluster, which is also a Docker container."""
    return node_names(Kube("default"))[0]


@pytest.fixture
def record_timing(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """Names a measurement for the summary. It rides on the test's reports, the one way from
    an xdist worker to the controller that prints the summary."""

    def record(what: str, seconds: float) -> None:
        request.node.user_properties.append((MEASURED, f"{what}: {seconds:.1f}s"))

    return record


@pytest.fixture
def record_figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Names a measured figure that is not a duration (counts, with what they are), for the
    summary, as record_timing does."""

    def record(what: str) -> None:
        request.node.user_properties.append((MEASURED, what))

    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        report.sections.append(("e2e diagnostics", diagnostics(item)))
    return report


def diagnostics(item: pytest.Item) -> str:
    funcargs = getattr(item, "funcargs", {})
    kube = funcargs.get("namespace")
    if not isinstance(kube, Kube):
        return "(no namespace)"
    text = [kube.diagnostics()]
    releases = funcargs.get("release")
    for rel in releases.made if isinstance(releases, Releases) else []:
        text.append(f"### wq status of release {rel.name}\n{rel.release_status_text()}")
    return "\n".join(text)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Called in the controller for the reports of every worker (and in each worker for its
    own, which the worker never prints)."""
    if "tests/e2e/" not in report.nodeid:
        return
    durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration
    if report.when == "teardown":  # the last report of a test carries all it recorded
        measurements.extend(str(v) for k, v in report.user_properties if k == MEASURED)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    if not durations or hasattr(config, "workerinput"):  # an xdist worker: not its to write
        return
    # Longest first: with tests side by side, those bound the wall time.
    ranked = sorted(durations.items(), key=lambda kv: kv[1], reverse=True)
    lines = [f"{seconds:7.1f}s  {nodeid}" for nodeid, seconds in ranked]
    lines += [f"measured: {m}" for m in measurements]
    workers = getattr(config.option, "numprocesses", None) or 1
    lines.append(f"sum of test durations: {sum(durations.values()):.1f}s in {workers} worker(s)")
    lines.append(f"total wall time: {time.monotonic() - SUITE_STARTED:.1f}s")
    terminalreporter.write_sep("=", "e2e timings")
    for line in lines:
        terminalreporter.write_line(line)
    ARTIFACTS.mkdir(exist_ok=True)
    with TIMINGS_FILE.open("a", encoding="utf-8") as out:  # appended: one block per session
        out.write(f"## {time.strftime('%Y-%m-%d %H:%M:%S')}\n" + "\n".join(lines) + "\n")
    terminalreporter.write_line(f"(also in {TIMINGS_FILE})")
