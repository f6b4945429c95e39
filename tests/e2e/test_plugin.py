"""`kubectl wq` (issue 24) on a real cluster: each command against a release in a namespace
that is not the kubeconfig's, as the NOTES print them, equal to what a CLI pod in the cluster
reads; and its one-line errors for no such release, a user without permission on the Redis
password's Secret, and a Redis that is not ready."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.checks import command_run
from tests.e2e.kube import Kube, marked, marked_processes, run, tool
from tests.e2e.release import Release, Releases
from tests.polling import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ITEMS: list[Any] = ["ok1", "<b>markup</b>", "oops", "ok2"]
POISON = 2
SCRIPT = '[ "$WQ_ITEM" != oops ] || { echo "refusing $WQ_ITEM" >&2; exit 5; }'
# What changes between two reads of a drained run: the TTL counts down.
VOLATILE = ("expires_in_s",)
README = Path(__file__).resolve().parents[2] / "README.md"


def kubectl_wq(*args: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    """`kubectl wq ARGS`: kubectl finds the plugin, kubectl-wq, on PATH (the venv's bin)."""
    return run([tool("kubectl"), "wq", *args], check=check, **kw)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.stdout == "", proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kubectl wq: error: "), lines
    return lines[0]


def notes_lines(rel: Release) -> list[str]:
    """The `kubectl wq` commands that the release's NOTES print, as printed."""
    notes = rel.helm("get", "notes", rel.name).stdout
    return [ln.strip() for ln in notes.splitlines() if ln.strip().startswith("kubectl wq ")]


def readme_lines() -> list[str]:
    """The README's `kubectl wq` block, its commands without the prompt and comments."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index("$ kubectl wq watch wq -n default") :].split("```")[0]
    return [ln.removeprefix("$ ").split("#")[0].strip() for ln in block.splitlines() if ln]


def readme_cli_pod_block() -> str:
    """The README's CLI pod, for users without the plugin."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"```bash\n(NS=default RELEASE=wq RUN=wq-1\nspec\(\).*?)```", text, re.S)
    assert match, "README lost its CLI pod block"
    return match.group(1)


def steady(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in VOLATILE}


def test_plugin_commands_as_the_notes_print_them(
    release: Releases, namespace: Kube, tmp_path: Path
) -> None:
    rel = release("plugged")
    values = command_run(ITEMS, SCRIPT, max_attempts=1)
    rel.install(values)
    ns = namespace.namespace
    # The kubeconfig's own namespace is another one: -n is what finds the release.
    assert run(
        [tool("kubectl"), "config", "view", "--minify", "-o", "jsonpath={..namespace}"]
    ).stdout in ("", "default")

    # watch follows the run to its drain (retrying while Redis or the seeder starts).
    mine = marked(ns)  # what this test starts, so that leftovers are looked for among them
    watched = kubectl_wq("watch", rel.name, "-n", ns, "--interval", "0.5", timeout=300, env=mine)
    assert re.search(r"^state\s+drained with dead items$", watched.stdout, re.M), watched.stdout
    rel.wait(timeout=240, expect="Complete")

    printed = notes_lines(rel)
    assert [ln.split()[2] for ln in printed] == [
        "watch",
        "dead",
        "status",
        "retry-dead",
        "purge",
        "report",
        "status",
        "digest",
    ], printed
    expected = rel.status()  # a CLI pod in the cluster: the reference
    assert (expected["done"], expected["dead"]) == (3, 1), expected

    # The README shows the same commands as the NOTES (those run below), for release wq.
    shown = {
        ln.replace("wq -n default", f"{rel.name} -n {ns}").replace("items.txt", "FILE")
        for ln in readme_lines()
    }
    assert shown == {ln.split("#")[0].strip() for ln in printed}

    by_name = {ln.split()[2] + (" --check" if "--check" in ln else ""): ln for ln in printed}
    here = tmp_path / "notes"
    here.mkdir()

    def as_printed(name: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        line = by_name[name].split("#")[0].strip()
        line = line.replace("FILE", str(tmp_path / "values.yaml"))
        return run(
            ["bash", "-euo", "pipefail", "-c", f"cd {here} && {line} {' '.join(extra)}"],
            check=check,
            timeout=120,
            env=mine,
        )

    status = json.loads(as_printed("status", "--json").stdout)
    assert steady(status) == steady(expected)
    assert status["run"] == rel.run_id()
    # The README's CLI pod, for users without the plugin, as pasted: the same counts.
    pod_block = readme_cli_pod_block().replace(
        "NS=default RELEASE=wq RUN=wq-1", f"NS={ns} RELEASE={rel.name} RUN={rel.run_id()}"
    )
    by_pod = run(
        ["bash", "-euo", "pipefail", "-c", pod_block.replace("wq status", "wq status --json")],
        timeout=240,
    )
    assert steady(json.loads(by_pod.stdout)) == steady(rel.status())
    assert not namespace.find("pod", f"{rel.run_id()}-cli"), "the CLI pod is deleted"

    checked = as_printed("status --check", check=False)
    assert checked.returncode == 1, checked  # a dead item: not clean
    assert "every position accounted for once: 3 done + 1 dead = 4 total" in checked.stdout

    dead = as_printed("dead")
    assert f"1 dead item(s) in run {rel.run_id()}" in dead.stderr
    assert "refusing oops" in dead.stdout

    as_printed("report")
    records = [json.loads(ln) for ln in (here / "report.jsonl").read_text().splitlines()]
    assert records == rel.report()
    assert [r["item"] for r in records] == ITEMS
    assert records[POISON]["state"] == "dead"

    # digest: the run holds exactly the items of the values file it was installed from.
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values), encoding="utf-8")
    same = as_printed("digest")
    assert same.stdout.strip() == expected["digest"]
    assert "the run holds exactly the items given" in same.stderr
    other = kubectl_wq("digest", rel.name, "-n", ns, "a", "b", check=False, env=mine)
    assert other.returncode == 1, other
    assert "differs" in other.stderr, other

    requeued = as_printed("retry-dead")
    assert f"requeued 1 dead item(s) in run {rel.run_id()}" in requeued.stdout
    assert rel.status()["dead"] == 0

    # --context: a kubeconfig whose context names the namespace needs no -n.
    kubeconfig = context_in(tmp_path, ns)
    here_too = kubectl_wq("status", rel.name, "--kubeconfig", str(kubeconfig), "--json", env=mine)
    assert json.loads(here_too.stdout)["run"] == rel.run_id()

    purged = as_printed("purge")
    assert re.search(rf"deleted \d+ key\(s\) of run {rel.run_id()}", purged.stdout), purged
    assert rel.status()["state"] == "not seeded"
    # Nothing this test started is left running (other tests' plugins may be).
    assert not marked_processes(ns)


def context_in(tmp_path: Path, namespace: str) -> Path:
    """A copy of the test's kubeconfig whose current context has `namespace`."""
    config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text(encoding="utf-8"))
    current = config["current-context"]
    for context in config["contexts"]:
        if context["name"] == current:
            context["context"]["namespace"] = namespace
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def restricted_kubeconfig(kube: Kube, tmp_path: Path, name: str, *grants: str) -> Path:
    """A kubeconfig of a ServiceAccount `name` that may list services, pods and jobs in the
    namespace, and do what `grants` name besides: "secrets" (get them), "portforward" (get
    pods/portforward, what the client's websocket port-forward asks)."""
    resources = {"secrets": "secrets", "portforward": "pods/portforward"}
    kube("create", "serviceaccount", name)
    roles = {name: ("--verb=get,list", "--resource=services,pods,jobs")}
    roles |= {f"{name}-{g}": ("--verb=get", f"--resource={resources[g]}") for g in grants}
    for role, rules in roles.items():
        kube("create", "role", role, *rules)
        kube(
            "create",
            "rolebinding",
            role,
            f"--role={role}",
            f"--serviceaccount={kube.namespace}:{name}",
        )
    token = kube("create", "token", name).strip()
    config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text(encoding="utf-8"))
    cluster = config["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": cluster["name"], "user": name, "namespace": kube.namespace},
            }
        ],
        "current-context": name,
    }
    path = tmp_path / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def refused_as(release: str, kubeconfig: Path) -> str:
    """The error line of `kubectl wq status` for a user the API refuses something (exit 1)."""
    refused = kubectl_wq("status", release, "--kubeconfig", str(kubeconfig), check=False)
    assert refused.returncode == 1, refused
    return one_line_error(refused)


def test_plugin_errors_are_one_line(release: Releases, namespace: Kube, tmp_path: Path) -> None:
    rel = release("guarded")
    rel.install(
        {
            "items": ["a", "b"],
            "worker": {"parallelism": 1, "demoSleep": 0},
            "metrics": {"enabled": True},
        }
    )
    rel.wait()
    ns = namespace.namespace

    # An exporter without the page says which value serves it.
    namespace(
        "wait", "--for=condition=Ready", "pod", "-l", rel.selector("exporter"), "--timeout=120s"
    )
    no_page = kubectl_wq("ui", rel.name, "-n", ns, "--port", "0", check=False)
    assert no_page.returncode == 2
    assert "serves no page: set metrics.ui.enabled=true" in one_line_error(no_page)

    missing = kubectl_wq("status", "nosuch", "-n", ns, check=False)
    assert missing.returncode == 2
    assert f"no release 'nosuch' in namespace '{ns}'" in one_line_error(missing)

    # A user who may do everything else but read the Secret of the Redis password.
    line = refused_as(
        rel.name, restricted_kubeconfig(namespace, tmp_path, "no-secret", "portforward")
    )
    assert f"cannot read Secret '{rel.redis_name}'" in line, line
    assert "no permission for it (403 Forbidden, RBAC)" in line, line
    # One who may read it, but not port-forward: the pod and the verb are named.
    line = refused_as(rel.name, restricted_kubeconfig(namespace, tmp_path, "no-forward", "secrets"))
    assert f"cannot port-forward to pod '{rel.redis_name}-" in line, line
    assert "403 Forbidden, RBAC); it takes get on pods/portforward" in line, line
    # With both, the user reads the run: the RBAC the README lists is enough.
    allowed = restricted_kubeconfig(namespace, tmp_path, "reader", "secrets", "portforward")
    ok = kubectl_wq("status", rel.name, "--kubeconfig", str(allowed), "--json")
    assert json.loads(ok.stdout)["done"] == 2

    # A release with an external Redis: the plugin reaches only the chart's own.
    outside = release("outside")
    outside.install(
        {
            "redis": {"enabled": False},
            "externalRedis": {"host": "redis.invalid"},
            "seed": {"enabled": False},
            "worker": {"parallelism": 1},
        }
    )
    external = kubectl_wq("status", outside.name, "-n", ns, check=False)
    assert external.returncode == 2
    assert "has no Redis of its own (redis.enabled=false)" in one_line_error(external)
    outside.helm("uninstall", outside.name)

    # Redis not ready: its Deployment scaled to 0.
    namespace("scale", f"deploy/{rel.redis_name}", "--replicas=0")
    wait_until(
        "the Redis pod gone", lambda: not namespace.pod_names(rel.selector("redis")), 120, 1.0
    )
    down = kubectl_wq("status", rel.name, "-n", ns, "--redis-wait", "0", check=False)
    assert down.returncode == 1
    assert f"the Redis of release '{rel.name}' in namespace '{ns}' is not ready" in (
        one_line_error(down)
    )


def test_plugin_opens_the_page(release: Releases, namespace: Kube) -> None:
    """`kubectl wq ui`, as the NOTES print it: the URL it prints serves the page and the
    run as `wq status --json` shows it, through the port-forward, until Ctrl-C ends it."""
    rel = release("paged")
    items = ["p1", "<script>alert(1)</script>", "p3"]
    rel.install(
        {
            "items": items,
            "worker": {"parallelism": 1, "demoSleep": 0},
            "metrics": {"enabled": True, "ui": {"enabled": True}},
        }
    )
    rel.wait()
    [line] = [ln for ln in notes_lines(rel) if ln.split()[2] == "ui"]
    assert line == f"kubectl wq ui {rel.name} -n {namespace.namespace}"
    with subprocess.Popen(
        ["bash", "-c", f"exec {line} --port 0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            read_the_page(proc, rel, len(items))
        finally:
            if proc.poll() is None:
                proc.kill()


def read_the_page(proc: subprocess.Popen[str], rel: Release, items: int) -> None:
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = proc.stdout.readline()  # the process prints its URL once it serves, or ends
    found = re.search(r"(http://127\.0\.0\.1:(\d+)/)", first)
    assert found, f"{first!r} {proc.stderr.read() if proc.poll() is not None else ''}"
    url, port = found[1], int(found[2])
    with urllib.request.urlopen(url, timeout=30) as page:
        assert page.headers.get_content_type() == "text/html"
    with urllib.request.urlopen(f"{url}api/runs/{rel.run_id()}", timeout=30) as answer:
        shown = json.load(answer)
    assert steady(shown) == steady(rel.status())
    assert shown["done"] == items
    with urllib.request.urlopen(f"{url}api/runs/{rel.run_id()}/report.jsonl", timeout=30) as r:
        assert [json.loads(ln) for ln in r.read().decode().splitlines()] == rel.report()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
