"""`kubectl wq` (wq.cli.kubectl) where no cluster is needed: its help, and its one-line errors
before it reaches one. tests/e2e/test_plugin.py runs it on the kind cluster."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.cli_runner import wq_env
from wq.cli.kubectl import RUNS

COMMANDS = sorted([*RUNS, "digest", "ui"])


def kubectl_wq(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, the one kubectl finds on PATH as `kubectl wq`."""
    env = wq_env({"KUBECONFIG": str(kubeconfig)} if kubeconfig else None)
    return subprocess.run(
        [str(Path(sys.executable).parent / "kubectl-wq"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_every_command() -> None:
    result = kubectl_wq("--help")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line]
    assert listed == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_a_release_and_kubectls_flags(command: str) -> None:
    result = kubectl_wq(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: kubectl wq {command} [OPTIONS] RELEASE" in result.stdout
    for flag in ("--namespace", "--context", "--kubeconfig"):
        assert flag in result.stdout
    # The Redis is the release's: the plugin takes no Redis URL or password.
    assert "--redis-url" not in result.stdout
    assert "--redis-password" not in result.stdout
    if command in RUNS:
        wq_command, fixed = RUNS[command]
        flags = "".join(f" --{k}" for k in fixed)
        assert f"Runs `wq {wq_command}{flags}` on the release's run." in " ".join(
            result.stdout.split()
        )


def test_no_kubeconfig_is_one_line_exit_2(tmp_path: Path) -> None:
    result = kubectl_wq("status", "rel", kubeconfig=tmp_path / "missing")
    assert result.returncode == 2
    assert result.stderr.startswith("kubectl wq: error: no usable kubeconfig")
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_an_api_server_out_of_reach_is_one_line(tmp_path: Path) -> None:
    # A real closed port: nothing listens on it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = kubectl_wq("dead", "rel", kubeconfig=path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(
        "kubectl wq: error: cannot list the Services of release 'rel' in namespace 'ns': "
        f"the Kubernetes API at http://127.0.0.1:{port} is out of reach"
    ), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
