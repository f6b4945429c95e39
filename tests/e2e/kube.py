"""Helpers of the e2e tests: kubectl, helm and docker against the kind cluster.

The cluster comes from KUBECONFIG (set by `make e2e` to the kind cluster's own file, never
the user's). Tools come from the repository's `bin/` (pinned versions) or else from PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.polling import wait_until

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "chart"
ARTIFACTS = REPO / "_artifacts"

Obj = dict[str, Any]

# Pod states that never get better by waiting: fail at once instead of timing out.
HOPELESS_WAITING_REASONS = {
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
}
# ... except these messages, which the kubelet gets over by itself: on a loaded node its
# Secret and ConfigMap caches can miss their sync deadline, and it retries; a pull over its
# pull rate limit is retried too.
PASSING_MESSAGES = (
    "failed to sync secret cache",
    "failed to sync configmap cache",
    "pull QPS exceeded",
)
# The environment variable that marks the processes one test started (see `marked`).
MARK = "E2E_TEST_MARK"


def tool(name: str) -> str:
    """The pinned binary in bin/ if there is one, else the one on PATH."""
    pinned = REPO / "bin" / name
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return str(pinned)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found in bin/ or on PATH: run `make tools`", pytrace=False)
    return found


def marked(mark: str) -> dict[str, str]:
    """The environment to start a test's processes with, so that `marked_processes` finds
    them and no other test's: e2e tests run side by side on this machine."""
    return {MARK: mark}


def marked_processes(mark: str) -> list[str]:
    """Command lines of the running processes started with `marked(mark)`, wherever they
    were reparented (a process outliving its command is what such a check looks for)."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for proc in Path("/proc").iterdir():
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                cmdline = (proc / "cmdline").read_bytes()
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
        except (FileNotFoundError, PermissionError, ProcessLookupError, NotADirectoryError):
            continue  # gone meanwhile, another user's, or not a process
    return found


def setting(name: str, run_what: str = "`make e2e`") -> str:
    """A setting the Makefile passes, such as an image name (the Makefile is the one place
    that names them); fails, naming the make target to run, when it is not set."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run {run_what} (the Makefile sets it)", pytrace=False)
    return value


def run(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    timeout: float = 180,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env} if env else None,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}",
            pytrace=False,
        )
    return proc


@dataclass(frozen=True)
class Kube:
    """kubectl in one namespace."""

    namespace: str

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        argv = [tool("kubectl"), "-n", self.namespace, *args]
        return run(argv, stdin=stdin, check=check).stdout

    def get(self, *args: str) -> Obj:
        result: Obj = json.loads(self("get", *args, "-o", "json"))
        return result

    def items(self, kind: str, selector: str = "") -> list[Obj]:
        items: list[Obj] = self.get(kind, *(["-l", selector] if selector else []))["items"]
        return items

    def find(self, kind: str, name: str) -> Obj | None:
        """The object, or None while it does not exist."""
        found = self("get", kind, name, "--ignore-not-found", "-o", "json")
        return json.loads(found) if found else None

    def apply(self, manifest: Obj) -> None:
        self("apply", "-f", "-", stdin=json.dumps(manifest))

    def pod_names(self, selector: str = "", phase: str | None = None) -> list[str]:
        return [
            p["metadata"]["name"]
            for p in self.items("pods", selector)
            if phase is None or p["status"].get("phase") == phase
        ]

    def logs(self, selector: str) -> str:
        """Logs of every pod matching `selector` (all lines, not the last 10)."""
        return self(
            "logs",
            "-l",
            selector,
            "--all-containers",
            "--tail=-1",
            "--max-log-requests=30",
            "--prefix",
            check=False,
        )

    def diagnostics(self) -> str:
        """What a failed test needs to be understood: objects, descriptions, logs, events."""
        sections = [
            ("objects", ["get", "all,configmaps,pvc,networkpolicies", "-o", "wide"]),
            ("describe jobs", ["describe", "jobs"]),
            ("describe pods", ["describe", "pods"]),
            ("events", ["get", "events", "--sort-by=.lastTimestamp"]),
        ]
        out = [f"### {title}\n{self(*args, check=False)}" for title, args in sections]
        for pod in self.pod_names():
            out.append(f"### logs {pod}\n{self('logs', pod, '--all-containers', check=False)}")
        return "\n".join(out)

    def fail_on_hopeless_pods(self, selector: str) -> None:
        for pod in self.items("pods", selector):
            fail_if_hopeless(pod)


def fail_if_hopeless(pod: Obj) -> None:
    """Fails the test at once when a container of `pod` can never start."""
    for status in pod.get("status", {}).get("containerStatuses", []):
        waiting = status.get("state", {}).get("waiting", {})
        message = waiting.get("message", "")
        if waiting.get("reason") in HOPELESS_WAITING_REASONS and not any(
            passing in message for passing in PASSING_MESSAGES
        ):
            name = pod["metadata"]["name"]
            pytest.fail(f"pod {name}: {waiting['reason']}: {waiting.get('message', '')}")


def has_labels(obj: Obj, selector: str) -> bool:
    """Whether `obj` matches an equality selector ("a=b,c=d"), as kubectl -l would."""
    labels = obj["metadata"].get("labels", {})
    terms = (term.partition("=") for term in selector.split(","))
    return all(labels.get(key) == value for key, _, value in terms)


def job_outcome(job: Obj) -> str | None:
    """Returns "Complete" or "Failed" once the Job has finished, else None. Looks at every
    condition, not just the first (a Job has SuccessCriteriaMet or FailureTarget first)."""
    for condition in job.get("status", {}).get("conditions", []):
        if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
            return str(condition["type"])
    return None


def job_condition(job: Obj, kind: str) -> Obj:
    return next(c for c in job["status"]["conditions"] if c["type"] == kind)


def wait_for_job(
    kube: Kube,
    name: str,
    timeout: float,
    expect: str = "Complete",
    pods: str = "",
    prerequisites: Sequence[str] = (),
) -> Obj:
    """Waits until Job `name` is Complete or Failed and returns it. Fails fast when it ends
    the other way than `expect`, when a Job in `prerequisites` fails, or when a pod matching
    `pods` (default: the Job's own) can never start."""

    def finished() -> Obj | None:
        # One kubectl call a look: with tests side by side, kubectl's CPU is what they share.
        objects = kube.items("jobs,pods")
        for pod in objects:
            if pod["kind"] == "Pod" and has_labels(pod, pods or f"job-name={name}"):
                fail_if_hopeless(pod)
        jobs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Job"}
        for other in prerequisites:
            if job_outcome(jobs.get(other, {})) == "Failed":
                pytest.fail(f"job {other}, which job {name} needs, failed")
        job = jobs.get(name)
        return job if job and job_outcome(job) else None

    job = wait_until(f"job {name} to finish", finished, timeout, interval=1.0)
    outcome = job_outcome(job)
    if outcome != expect:
        conditions = json.dumps(job["status"].get("conditions"), indent=1)
        pytest.fail(f"job {name} ended {outcome}, expected {expect}: {conditions}")
    return job


def docker(*args: str, check: bool = True) -> str:
    return run([tool("docker"), *args], check=check).stdout


def container_pid(kube: Kube, pod: str, container: str) -> tuple[str, str]:
    """The node of `pod` and the PID there of its container's main process, for kill_on_node.

    (From inside the container PID 1 cannot be sent SIGKILL; the node's PID namespace is the
    parent of the container's, and kind nodes are Docker containers named after the node.)
    """
    obj = kube.get("pod", pod)
    node = obj["spec"]["nodeName"]
    status = next(s for s in obj["status"]["containerStatuses"] if s["name"] == container)
    container_id = status["containerID"].split("://", 1)[1]
    pid = docker(
        "exec",
        node,
        "crictl",
        "inspect",
        "--output",
        "go-template",
        "--template",
        "{{.info.pid}}",
        container_id,
    ).strip()
    return node, pid


def kill_on_node(node: str, pid: str) -> None:
    """kill -9 a process of the kind node: no SIGTERM, no goodbye."""
    docker("exec", node, "kill", "-9", pid)


def node_names(kube: Kube) -> list[str]:
    nodes: list[Obj] = json.loads(kube("get", "nodes", "-o", "json"))["items"]
    return [n["metadata"]["name"] for n in nodes]
