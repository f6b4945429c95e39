"""A private redis-server on this machine: for `wq run`, the tests and the benchmark.

One launcher, so that how wq starts, waits for and stops a throwaway Redis is written once.
"""

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from wq.base.errors import ConfigError, WqError

START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server without snapshots, on a loopback TCP port or on a unix socket.

    `aof=True` turns on the append-only file with fsync on every write, so that a server
    killed with SIGKILL and started again keeps everything it acknowledged.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        unix: bool = False,
        aof: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ConfigError(
                "no redis-server on PATH; install Redis (e.g. apt-get install redis-server) "
                "or point --redis-url at one"
            )
        self.binary = binary
        self.workdir = workdir
        self.unix = unix
        self.port = 0 if unix else (port or free_port())
        self.aof = aof
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.workdir / "redis.sock"

    @property
    def url(self) -> str:
        if self.unix:
            return f"unix://{self.socket_path}"
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        args = [self.binary, "--port", str(self.port), "--dir", str(self.workdir), "--save", ""]
        args += ["--unixsocket", str(self.socket_path)] if self.unix else ["--bind", "127.0.0.1"]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args + self.extra_args

    def connect(self) -> "redis.Redis":
        return redis.Redis.from_url(self.url, decode_responses=True)

    def start(self) -> None:
        """Start the server and return once it answers PING (a restart keeps the port)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        client = self.connect()
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.proc.poll() is not None:
                        raise WqError(
                            f"redis-server exited at start with code {self.proc.returncode}; "
                            f"see {self.workdir / 'redis.log'}"
                        ) from None
                    if time.monotonic() > deadline:
                        raise WqError(
                            f"redis-server did not answer within {START_TIMEOUT_S:g}s; "
                            f"see {self.workdir / 'redis.log'}"
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None


class LocalCluster:
    """A Redis Cluster of `size` primaries on loopback, no replicas: for the tests and the
    benchmark of sharded runs. Each node's cluster bus is its port + 10000."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        ports: list[int] = []
        while len(ports) < size:
            port = free_port()
            if port <= 55535 and _port_free(port + 10000) and port not in ports:
                ports.append(port)
        self.nodes = [
            RedisServer(
                workdir / f"node{n}",
                port=port,
                extra_args=["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"],
            )
            for n, port in enumerate(ports)
        ]

    @property
    def url(self) -> str:
        """Any node's URL: a cluster client finds the others."""
        return self.nodes[0].url

    def start(self) -> None:
        """Start every node, join them with `redis-cli --cluster create` and return once each
        node says the cluster is ok."""
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0"]
        subprocess.run(
            [*create, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 60
        while not all(self._ok(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise WqError("the local Redis Cluster did not become ok within 60s")
            time.sleep(0.2)

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        client = node.connect()
        try:
            return "cluster_state:ok" in str(client.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
