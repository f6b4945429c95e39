"""A Helm release of the wq chart under test, and ways to read its run's truth.

Truth comes from two places: `wq status --json` / `wq dead --json` in a one-off CLI pod
(the product's own view, as NOTES.txt tells a user to run it) and `redis-cli` inside the
bundled Redis pod (the raw keys, e.g. which worker completed each position).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.kube import (
    CHART,
    Kube,
    Obj,
    fail_if_hopeless,
    run,
    tool,
    wait_for_job,
    wait_until,
)
from wq.store import layout

CHART_NAME = "wq"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str

    @classmethod
    def parse(cls, ref: str) -> Image:
        repository, _, tag = ref.rpartition(":")
        if not repository or "/" in tag:
            raise ValueError(f"image {ref!r} needs an explicit tag (never :latest in kind)")
        return cls(repository, tag)

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"

    def values(self) -> Obj:
        # The chart's default policy: the tag is unique per content (scripts/cluster-images.sh),
        # so the node pulls a new build from the local registry and reuses an old one.
        return {"repository": self.repository, "tag": self.tag, "pullPolicy": "IfNotPresent"}


def registry_has(image: Image) -> bool:
    """Whether the registry in the image's name (the cluster's local one, plain HTTP) serves
    its manifest: what a node's pull of it needs."""
    return registry_digest(image) is not None


def registry_digest(image: Image) -> str | None:
    """The digest of the manifest the image's registry serves for its tag (None: none)."""
    host, _, repository = image.repository.partition("/")
    request = urllib.request.Request(
        f"http://{host}/v2/{repository}/manifests/{image.tag}",
        method="HEAD",
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            digest = response.headers.get("Docker-Content-Digest")
            return str(digest) if response.status == 200 and digest else None
    except urllib.error.URLError:
        return None


@dataclass(frozen=True)
class Images:
    worker: Image
    redis: Image

    def values(self) -> Obj:
        return {"image": self.worker.values(), "redis": {"image": self.redis.values()}}


# The kind node's CPU requests: 2 cores, the control plane's ~0.9 of them. At the chart's
# requests (0.1 a worker or Redis) the pods of tests run side by side queue for the scheduler's
# CPU, not the machine's; requests are not what any test here is about. Under every install.
SMALL_REQUESTS: Obj = {
    component: {"resources": {"requests": {"cpu": "10m"}}}
    for component in ("worker", "seed", "redis")
}


def merge(base: Obj, extra: Obj) -> Obj:
    """Deep merge of values, as helm does with several -f files."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass
class Release:
    kube: Kube
    name: str
    images: Images
    workdir: Path
    revision: int = 0
    values: Obj = field(default_factory=dict)

    # --- names, as the chart derives them ---------------------------------------------
    @property
    def fullname(self) -> str:
        return self.name if CHART_NAME in self.name else f"{self.name}-{CHART_NAME}"

    def run_id(self, revision: int | None = None) -> str:
        return str(self.values.get("runId") or f"{self.fullname}-{revision or self.revision}")

    def worker_job(self, revision: int | None = None) -> str:
        return f"{self.run_id(revision)}-worker"

    @property
    def redis_name(self) -> str:
        return f"{self.fullname}-redis"

    def selector(self, component: str) -> str:
        return f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}"

    # --- helm ------------------------------------------------------------------------
    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            "HELM_CACHE_HOME": str(self.workdir / "helm-cache"),
            "HELM_CONFIG_HOME": str(self.workdir / "helm-config"),
            "HELM_DATA_HOME": str(self.workdir / "helm-data"),
        }
        argv = [tool("helm"), "-n", self.kube.namespace, *args]
        return run(argv, timeout=300, check=check, env=env)

    def _values_file(self, values: Obj) -> Path:
        path = self.workdir / f"{self.name}-values-{uuid.uuid4().hex[:6]}.json"
        base = merge(SMALL_REQUESTS, self.images.values())
        path.write_text(json.dumps(merge(base, values)), encoding="utf-8")
        return path

    def install(
        self, values: Obj, check: bool = True, chart: Sequence[str] = (str(CHART),)
    ) -> subprocess.CompletedProcess[str]:
        """helm install of `chart` (the work tree's by default; or e.g. an oci:// reference
        with its --version and --plain-http)."""
        return self._deploy("install", values, check, chart)

    def upgrade(self, values: Obj) -> subprocess.CompletedProcess[str]:
        return self._deploy("upgrade", values, True, (str(CHART),))

    def _deploy(
        self, verb: str, values: Obj, check: bool, chart: Sequence[str]
    ) -> subprocess.CompletedProcess[str]:
        values_file = str(self._values_file(values))
        result = self.helm(verb, self.name, *chart, "-f", values_file, check=check)
        if result.returncode == 0:
            self.revision += 1
            self.values = values
        return result

    def template(self, values: Obj, *extra: str) -> list[Obj]:
        """The manifests `helm template` renders for this release with `values` (merged with
        the test images and SMALL_REQUESTS, as install does)."""
        values_file = str(self._values_file(values))
        # As install renders: for the cluster's Kubernetes, not the one helm assumes without one.
        version = json.loads(self.kube("version", "-o", "json"))["serverVersion"]["gitVersion"]
        argv = ["template", self.name, str(CHART), "-f", values_file, "--kube-version", version]
        out = self.helm(*argv, *extra).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    # --- waiting ---------------------------------------------------------------------
    def wait(self, timeout: float = 180, expect: str = "Complete") -> Obj:
        """The worker Job of the current revision, once it is Complete (or Failed); fails
        fast when the seeding Job fails or a pod of the release cannot start."""
        seed_job = f"{self.run_id()}-seed"
        pods = f"app.kubernetes.io/instance={self.name}"
        return wait_for_job(self.kube, self.worker_job(), timeout, expect, pods, [seed_job])

    # --- the run's truth ---------------------------------------------------------------
    def wq(
        self, *args: str, run_id: str | None = None, redis_wait: int = 30, check: bool = True
    ) -> str:
        """Runs `wq ARGS` in a CLI pod with the workers' connection settings; its output
        (failing the test if wq fails, unless check is False)."""
        pod = f"{self.name}-cli-{uuid.uuid4().hex[:5]}"
        self.kube(
            "run",
            pod,
            "--restart=Never",
            f"--image={self.images.worker.ref}",
            f"--labels={self.cli_labels()}",
            f"--overrides={json.dumps(self._cli_overrides(args, run_id, redis_wait))}",
        )
        try:
            phase = wait_until(
                f"CLI pod {pod}",
                lambda: self._finished_phase(pod),
                timeout=redis_wait + 60,
                interval=1.0,
            )
            output = self.kube("logs", pod)
            if check and phase != "Succeeded":
                pytest.fail(f"wq {' '.join(args)} failed in pod {pod}:\n{output}")
            return output
        finally:
            self.kube("delete", "pod", pod, "--wait=false", check=False)

    def cli_labels(self) -> str:
        # The chart's NetworkPolicy lets this release's pods with component=cli reach Redis.
        return f"app.kubernetes.io/name={CHART_NAME},{self.selector('cli')}"

    def pod_labels(self, component: str) -> dict[str, str]:
        """The labels the chart's NetworkPolicies select this release's `component` pods by."""
        labels = f"app.kubernetes.io/name={CHART_NAME},{self.selector(component)}"
        return dict(label.split("=", 1) for label in labels.split(","))

    def _finished_phase(self, pod: str) -> str | None:
        obj = self.kube.find("pod", pod) or {}
        fail_if_hopeless(obj)
        phase = obj.get("status", {}).get("phase")
        return str(phase) if phase in ("Succeeded", "Failed") else None

    def _cli_overrides(self, args: tuple[str, ...], run_id: str | None, redis_wait: int) -> Obj:
        """The pod spec of NOTES.txt's CLI pod, with the worker Job's env and security."""
        template = self.kube.get("job", self.worker_job())["spec"]["template"]["spec"]
        worker = template["containers"][0]
        wanted = {"WQ_RUN": run_id or self.run_id(), "WQ_REDIS_WAIT": str(redis_wait)}
        env: list[Obj] = [e for e in worker["env"] if e["name"] not in wanted]
        env += [{"name": k, "value": v} for k, v in wanted.items()]
        container = {
            "name": "wq",
            "image": self.images.worker.ref,
            "imagePullPolicy": "IfNotPresent",
            "command": ["wq", *args],
            "env": env,
            "securityContext": worker["securityContext"],
        }
        spec = {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": template["securityContext"],
            "containers": [container],
        }
        return {"spec": spec}

    def status(self, run_id: str | None = None) -> dict[str, Any]:
        """`wq status --json` of the current run (or of `run_id`)."""
        output = self.wq("status", "--json", run_id=run_id)
        line = next(ln for ln in reversed(output.splitlines()) if ln.startswith("{"))
        result: dict[str, Any] = json.loads(line)
        return result

    def dead(self) -> list[dict[str, Any]]:
        """`wq dead --json`: position, item and last error of each dead item."""
        output = self.wq("dead", "--json")
        return [json.loads(ln) for ln in output.splitlines() if ln.startswith("{")]

    def redis_cli(self, *args: str, check: bool = True) -> list[str]:
        """A redis-cli command in the bundled Redis pod (it authenticates with REDISCLI_AUTH);
        `check=False`: no lines (rather than a failure) while the pod is not up yet."""
        out = self.kube(
            "exec",
            f"deploy/{self.redis_name}",
            "-c",
            "redis",
            "--",
            "redis-cli",
            "--no-auth-warning",
            *args,
            check=check,
        )
        return out.splitlines()

    def report(self, *args: str, run_id: str | None = None) -> list[dict[str, Any]]:
        """`wq report ARGS` (JSON Lines): one record per item, in seed order."""
        output = self.wq("report", *args, run_id=run_id)
        return [json.loads(ln) for ln in output.splitlines() if ln.startswith("{")]

    def done_by(self, run_id: str | None = None) -> dict[int, str]:
        """Position -> id of the worker that completed it (the pod's name), from the ledger."""
        done = self.report("--state", "done", run_id=run_id)
        return {r["position"]: r["worker"] for r in done}

    def done_count(self) -> int:
        """The run's done counter, read in the Redis pod (cheap enough to poll)."""
        return int(self.redis_cli("HGET", f"wq:{{{self.run_id()}}}:meta", "done")[0] or 0)

    def leased_positions(self) -> set[int]:
        """Positions in a leased batch now (the batches hash, wq.store.layout): those done
        already stay there until their whole batch is, which a batch of one never is."""
        flat = self.redis_cli("HGETALL", f"wq:{{{self.run_id()}}}:batches")
        records = [r for r in flat[1::2] if r]
        return {p for record in records for p in layout.batch_positions(record)}

    def worker_logs(self) -> str:
        return self.kube.logs(self.selector("worker"))

    def release_status_text(self) -> str:
        """For diagnostics: `wq status` of the current run, or why it could not be read."""
        try:
            return self.wq("status", redis_wait=5)
        except (Exception, pytest.fail.Exception) as exc:
            return f"(wq status unavailable: {exc})"


class Releases:
    """Makes the releases of one test and remembers them (for diagnostics)."""

    def __init__(self, kube: Kube, images: Images, workdir: Path) -> None:
        self.kube = kube
        self.images = images
        self.workdir = workdir
        self.made: list[Release] = []

    def __call__(self, name: str) -> Release:
        self.made.append(Release(self.kube, name, self.images, self.workdir))
        return self.made[-1]
