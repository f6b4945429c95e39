"""`wq run`: the whole flow on one machine. Starts a private redis-server unless given a
URL, seeds, runs N worker processes with a progress bar, and prints a summary."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import redis

from wq.errors import ConfigError, WqError


@contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway redis-server on a unix socket; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError(
            "no --redis-url given and no redis-server on PATH; install Redis "
            "(e.g. apt-get install redis-server) or point --redis-url at one"
        )
    with tempfile.TemporaryDirectory(prefix="wq-") as tmp:
        socket_path = Path(tmp) / "redis.sock"
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(socket_path),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"unix://{socket_path}"
            _wait_for(url, proc)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _wait_for(url: str, proc: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WqError(f"redis-server exited at start with code {proc.returncode}")
        try:
            redis.Redis.from_url(url).ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise WqError("redis-server did not answer within 10s")


def start_workers(
    n: int, env: Mapping[str, str], command: list[str]
) -> list["subprocess.Popen[bytes]"]:
    argv = [sys.executable, "-m", "wq", "work", *(["--", *command] if command else [])]
    return [
        subprocess.Popen(argv, env={**os.environ, **env, "WQ_WORKER_ID": f"local-{i}"})
        for i in range(n)
    ]


def stop_workers(workers: list["subprocess.Popen[bytes]"]) -> None:
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
