"""Connecting over TLS to a real redis-server with a throwaway CA made by the openssl CLI:
the right CA works; a certificate that does not verify is a configuration error (exit 2, one
line), not an outage to retry (issue 9, obs. 10). And a port that answers something other than
Redis is waited out like an outage, then named."""

import contextlib
import io
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.polling import wait_until
from tests.unit.cli_runner import wq
from wq.base.errors import RedisUnavailable
from wq.base.logs import EventLog
from wq.base.options import ConnectionConfig
from wq.store.connection import RedisSettings, Retrying, certificate_problem
from wq.store.local_redis import RedisServer, free_port
from wq.store.queue import QUIET_RETRY_S, open_queue


@dataclass(frozen=True)
class TlsRedis:
    port: int
    ca: Path  # the CA that signed the server's certificate
    other_ca: Path  # a CA that did not

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> None:
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip


def make_certificates(directory: Path) -> None:
    """A CA, a server certificate it signed for IP 127.0.0.1, and an unrelated CA."""
    make_ca(directory, "ca")
    make_ca(directory, "other-ca")
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1\n"
        "basicConstraints = CA:FALSE\n"
        "authorityKeyIdentifier = keyid,issuer\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    directory = tmp_path_factory.mktemp("tls")
    make_certificates(directory)
    server = TlsRedis(free_port(), directory / "ca.pem", directory / "other-ca.pem")
    with (directory / "redis.log").open("wb") as log:
        proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(server.port),
             "--bind", "127.0.0.1", "--tls-cert-file", "server.pem", "--tls-key-file",
             "server.key", "--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no",
             "--save", "", "--appendonly", "no", "--dir", str(directory)],
            cwd=directory, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = redis.Redis.from_url(server.url, ssl_ca_certs=str(server.ca))

    def answers() -> bool:
        assert proc.poll() is None, (directory / "redis.log").read_text()
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until("the TLS redis-server to answer", answers, timeout=30)
        client.close()
        yield server
    finally:
        proc.terminate()
        proc.wait(10)


def status(url: str, ca: Path | None, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {"WQ_REDIS_URL": url, "WQ_RUN": "tls"}
    if ca is not None:
        env["WQ_REDIS_CA_CERT"] = str(ca)
    return wq("status", "--redis-wait", "2", *flags, env=env)


def test_status_over_tls_with_the_right_ca(tls_redis: TlsRedis) -> None:
    result = status(tls_redis.url, tls_redis.ca)
    assert result.returncode == 0, result.stderr
    assert "not seeded" in result.stdout
    flag = wq("status", "--run", "tls", "--redis-url", tls_redis.url, "--redis-ca-cert",
              str(tls_redis.ca))  # fmt: skip
    assert flag.returncode == 0, flag.stderr


def assert_config_error(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0]
    return lines[0]


def test_certificate_problem_is_found_in_the_message_alone() -> None:
    """For a redis-py that does not chain the SSL error to its ConnectionError."""
    message = (
        "Error 1 connecting to 127.0.0.1:6380. [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
        "verify failed: self-signed certificate in certificate chain (_ssl.c:1006)."
    )
    problem = certificate_problem(redis.ConnectionError(message))
    assert problem == "self-signed certificate in certificate chain"
    assert certificate_problem(redis.ConnectionError("Connection refused.")) is None


def test_no_ca_is_a_configuration_error(tls_redis: TlsRedis) -> None:
    url = f"rediss://:pw-Xy7@127.0.0.1:{tls_redis.port}/0"
    line = assert_config_error(
        status(url, None),
        f"rediss://:***@127.0.0.1:{tls_redis.port}/0",
        "certificate verification failed",
        "self-signed certificate in certificate chain",
        "--redis-ca-cert",
        "WQ_REDIS_CA_CERT",
    )
    assert "pw-Xy7" not in line


def test_wrong_ca_is_a_configuration_error(tls_redis: TlsRedis) -> None:
    assert_config_error(
        status(tls_redis.url, tls_redis.other_ca),
        tls_redis.url,
        "certificate verification failed",
        str(tls_redis.other_ca),
        "--redis-ca-cert",
    )


def test_a_name_the_certificate_does_not_hold_is_a_configuration_error(
    tls_redis: TlsRedis,
) -> None:
    assert_config_error(
        status(f"rediss://localhost:{tls_redis.port}/0", tls_redis.ca),
        "certificate is not valid for 'localhost'",
    )


def test_ca_setting_problems_are_configuration_errors(tls_redis: TlsRedis, tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    assert_config_error(status(tls_redis.url, tmp_path / "missing.pem"), "cannot be read")
    assert_config_error(status(tls_redis.url, not_pem), "holds no PEM certificate")
    plain = f"redis://127.0.0.1:{tls_redis.port}/0"
    assert_config_error(status(plain, tls_redis.ca), "only used with rediss://")


HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class HttpStandIn:
    """Answers every connection on a loopback port with an HTTP 400, as the proxy a Service
    briefly routed to did, until stopped."""

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.answered = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed by stop()
                return
            # A client that hangs up first (another test's, on a reused port) must not end it.
            with conn, contextlib.suppress(OSError):
                conn.recv(1024)
                conn.sendall(HTTP_400)
            self.answered.set()

    def stop(self) -> None:
        self.listener.close()
        self.thread.join(timeout=10)


def test_a_reply_that_is_not_redis_is_waited_out(tmp_path: Path) -> None:
    """Redis's port first answers HTTP; then the real server takes it over: the call waits
    and succeeds, having retried the InvalidResponse."""
    port = free_port()
    stand_in = HttpStandIn(port)
    retried: list[str] = []
    settings = RedisSettings.from_url(f"redis://127.0.0.1:{port}/0")
    call = Retrying(settings, 60, on_retry=lambda _, exc: retried.append(str(exc)))
    client = settings.client()
    result: list[object] = []
    caller = threading.Thread(target=lambda: result.append(call(client.ping)))
    caller.start()
    # Waits for the protocol error itself, not for any retry: on a loaded machine the first
    # connection has been seen refused (CI, once) though the stand-in was listening.
    wait_until(
        "the client to retry the stand-in's HTTP answer",
        lambda: any("Protocol error" in error for error in retried),
        timeout=30,
    )
    stand_in.stop()
    server = RedisServer(tmp_path, port=port)
    server.start()
    try:
        caller.join(timeout=60)
        assert result == [True], retried
    finally:
        server.stop()


def test_a_port_that_never_speaks_redis_is_named_after_the_wait(tmp_path: Path) -> None:
    port = free_port()
    stand_in = HttpStandIn(port)
    try:
        settings = RedisSettings.from_url(f"redis://127.0.0.1:{port}/0")
        with pytest.raises(RedisUnavailable, match=r"unreachable for .*Protocol error"):
            Retrying(settings, 0.5)(settings.client().ping)
        assert stand_in.answered.is_set()
    finally:
        stand_in.stop()


def test_retries_are_warnings_only_once_the_outage_lasts(tmp_path: Path) -> None:
    """A blip's retries are debug lines; from QUIET_RETRY_S on, each retry is a warning, and
    the outage ends in RedisUnavailable."""
    stream = io.StringIO()
    url = f"redis://127.0.0.1:{free_port()}/0"
    config = ConnectionConfig(redis_url=url, redis_wait=3, run_id="blip")
    queue = open_queue(config, EventLog(level="debug", fmt="json", stream=stream))
    with pytest.raises(RedisUnavailable):
        queue.reading.status()
    retries = [
        r for r in map(json.loads, stream.getvalue().splitlines()) if r["event"] == "redis.retry"
    ]
    levels = {r["level"] for r in retries}
    assert levels == {"debug", "warning"}, retries
    for record in retries:
        assert (record["level"] == "warning") == (record["waited_s"] >= QUIET_RETRY_S), record
