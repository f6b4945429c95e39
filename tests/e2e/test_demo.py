"""`make demo` (scripts/demo.sh) on the test cluster, into a namespace of its own: it ends with
the run's final status and prints NOTES.txt's `kubectl wq` lines, and each works as printed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.kube import Kube, run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
FRUITS = 9


def test_demo_ends_with_commands_that_work(namespace: Kube, tmp_path: Path) -> None:
    ns = namespace.namespace
    env = {**os.environ, "DEMO_RELEASE": "demo", "DEMO_NAMESPACE": ns}
    env.setdefault("MAKE", "make")
    demo = subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr[-4000:]
    assert re.search(rf"^done\s+{FRUITS}$", demo.stdout, re.MULTILINE), demo.stdout
    printed = [ln for ln in demo.stdout.splitlines() if ln.startswith("kubectl wq ")]
    assert len(printed) == 8, demo.stdout
    assert all(f" demo -n {ns}" in ln for ln in printed), printed
    assert not any("FILE" in ln for ln in printed), printed

    # In the order printed, purge last: it deletes what the others read.
    last = [ln for ln in printed if " purge " in ln]
    for line in [ln for ln in printed if ln not in last] + last:
        command = f"cd {tmp_path} && {line}"
        result = run(["bash", "-euo", "pipefail", "-c", command], timeout=180, check=False)
        assert result.returncode == 0, f"{line}\n{result.stderr}{result.stdout}"
        assert "error" not in result.stderr, f"{line}\n{result.stderr}"
        if line.split()[2] == "status" and "--check" in line:
            assert f"accounted for once: {FRUITS} done + 0 dead = {FRUITS} total" in result.stdout
        if line.split()[2] == "digest":
            assert "the run holds exactly the items given" in result.stderr
    report = (tmp_path / "report.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(report) == FRUITS
