"""A real Prometheus (the pinned bin/prometheus) on this machine, scraping a Service of the kind
cluster through `kubectl port-forward`, with the labels a ServiceMonitor would give the
target, and evaluating rules; queried over its HTTP API."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from tests.e2e.kube import Kube, tool
from tests.polling import wait_until

Sample = tuple[dict[str, str], float]


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A background process in its own session, logging to `log`; it and whatever it started
    are killed on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def port_forward(kube: Kube, target: str, port: int, log: Path) -> Iterator[int]:
    """`kubectl port-forward target :port`; yields the local port kubectl chose."""
    argv = [tool("kubectl"), "-n", kube.namespace, "port-forward", target, f":{port}"]
    with process(argv, log) as proc:

        def local_port() -> int | None:
            if proc.poll() is not None:
                raise AssertionError(f"port-forward to {target} ended: {log.read_text()}")
            found = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", log.read_text())
            return int(found.group(1)) if found else None

        yield wait_until(f"port-forward to {target}", local_port, timeout=60, interval=0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str) -> list[Sample]:
        """An instant query: (labels, value) of each series."""
        args = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{args}", timeout=10) as reply:
            body: dict[str, Any] = json.load(reply)
        assert body["status"] == "success", body
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def value(self, expr: str) -> float | None:
        """The value of a query that gives at most one series (None: no series)."""
        samples = self.query(expr)
        assert len(samples) <= 1, samples
        return samples[0][1] if samples else None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False


@contextlib.contextmanager
def prometheus(
    workdir: Path, target_port: int, target_labels: dict[str, str], rules: list[Any]
) -> Iterator[Prometheus]:
    """bin/prometheus scraping 127.0.0.1:target_port every second with `target_labels` (a
    ServiceMonitor's: job, namespace, service...), evaluating the rule `groups` every second."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules.yml").write_text(yaml.safe_dump({"groups": rules}), encoding="utf-8")
    labels = dict(target_labels)
    job = labels.pop("job")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(workdir / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": [f"127.0.0.1:{target_port}"], "labels": labels}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    # The port is free when chosen, but until prometheus binds it, any process of the machine
    # (kubectl of another xdist worker, say) may take it: then again with another.
    for attempt in range(3):
        port = free_port()
        argv = [
            tool("prometheus"),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        log = workdir / f"prometheus-{attempt}.log"
        with process(argv, log) as proc:
            server = Prometheus(f"http://127.0.0.1:{port}")
            up = functools.partial(started, proc, server)
            if wait_until("prometheus ready", up, timeout=120, interval=0.5) == "ready":
                yield server
                return
        if "address already in use" not in tail(log):
            raise AssertionError(f"prometheus exited: {tail(log)}")
    raise AssertionError(f"prometheus found no free port in 3 tries: {tail(log)}")


def started(proc: subprocess.Popen[bytes], server: Prometheus) -> str | None:
    """Whether prometheus is "ready" or has "exited"; None while neither."""
    if proc.poll() is not None:
        return "exited"
    return "ready" if server.ready() else None


def tail(log: Path, lines: int = 30) -> str:
    with log.open(encoding="utf-8", errors="replace") as f:
        return "".join(last(f, lines))


def last(f: IO[str], n: int) -> list[str]:
    return f.readlines()[-n:]
