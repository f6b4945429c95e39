"""Runs the real `wq` entry point as a subprocess, as a user or a pod would."""

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def wq_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WQ_")}
    # A worker never writes the termination message of a container the tests may run in.
    env["WQ_TERMINATION_LOG"] = ""
    # Workers import test handlers from tests/ by module path.
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def wq_argv(*args: str) -> list[str]:
    """The console script installed beside this interpreter: the real entry point."""
    return [str(Path(sys.executable).parent / "wq"), *args]


def wq(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    stdin: str = "",
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        wq_argv(*args),
        env=wq_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )
