"""A real redis-server for the docs' commands, and a runner of the real `wq` console script
as a user's shell would run it."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import redis

from tests.polling import wait_until

START_TIMEOUT_S = 30.0
BIN = Path(sys.executable).parent  # wq is installed beside this interpreter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
    argv += ["--save", "", "--appendonly", "no"]
    with (workdir / "redis.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(f"redis-server on port {port} (log: {workdir})", lambda: answers(url), 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def shell_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a user's shell with wq on PATH: no WQ_* settings of this process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WQ_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # A worker never writes the termination message of a container the tests may run in.
    env["WQ_TERMINATION_LOG"] = ""
    env.update(extra or {})
    return env


def sh(
    command: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """One command line, run by bash as typed."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=shell_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
