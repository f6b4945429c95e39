"""Real servers that items come from in the tests: an S3-compatible server (rclone serve s3,
built into bin/ by `make bin/rclone`) and an HTTP server in a thread, both on loopback."""

import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.polling import wait_until
from tests.unit.cli_runner import ROOT
from wq.store.local_redis import free_port

RCLONE = ROOT / "bin" / "rclone"
FAKE_GCS = ROOT / "bin" / "fake-gcs-server"
ACCESS_KEY, SECRET_KEY = "wq-test-key", "wq-test-secret"
START_TIMEOUT_S = 30.0
HOLD_S = 60.0  # drop_after's longest wait for its client
# No SDK may look further than the test servers: no instance metadata, no config files.
OFFLINE_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_GCE_CHECK": "true",
}


class ServerProcess:
    """A server binary built into bin/ (by the Makefile), run on a free loopback port; its
    output goes to `<workdir>/<binary name>.log`."""

    def __init__(self, binary: Path, workdir: Path, what: str) -> None:
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            pytest.fail(
                f"bin/{binary.name} is missing: the tests of {what} need it. `make test-unit` "
                "builds it first.",
                pytrace=False,
            )
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        log = self.workdir / f"{self.binary.name}.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT)
        wait_until(f"{self.binary.name} to listen (see {log})", self._listening, START_TIMEOUT_S)

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"{self.binary.name} exited: see its log in {self.workdir}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class S3Server(ServerProcess):
    """`rclone serve s3` over a directory: each top-level folder is a bucket."""

    def __init__(self, root: Path) -> None:
        super().__init__(RCLONE, root.parent, "s3:// sources")
        self.root = root

    @property
    def endpoint(self) -> str:
        return self.url

    def env(self, credentials: bool = True) -> dict[str, str]:
        """What a wq process needs to reach this server (with or without credentials)."""
        env = {**OFFLINE_ENV, "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
        if credentials:
            env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        return env

    def argv(self) -> list[str]:
        auth = ["--auth-key", f"{ACCESS_KEY},{SECRET_KEY}", "--config", os.devnull]
        address = ["--addr", f"127.0.0.1:{self.port}"]
        return [str(RCLONE), "serve", "s3", *auth, *address, str(self.root)]

    def put(self, bucket: str, key: str, data: bytes) -> str:
        """Upload through the S3 API (not into the directory: the server caches listings);
        returns the object's s3:// URL."""
        import s3fs  # type: ignore[import-untyped]

        fs = s3fs.S3FileSystem(
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            client_kwargs={"endpoint_url": self.endpoint, "region_name": "us-east-1"},
            skip_instance_cache=True,
        )
        if not fs.exists(bucket):
            fs.mkdir(bucket)
        fs.pipe(f"{bucket}/{key}", data)
        return f"s3://{bucket}/{key}"


Route = Callable[[http.server.BaseHTTPRequestHandler], None]


class HTTPServer:
    """A threaded HTTP server on loopback: GET of a path (its query aside) gives the bytes put
    there, or what a route does (e.g. drop the connection half-way)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                if path in server.routes:
                    server.routes[path](self)
                    return
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hangs up early (as one that got its error does) is fine

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def status(code: int) -> Route:
    """A route that answers with an HTTP error."""

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_error(code)

    return route


class GCSServer(ServerProcess):
    """fake-gcs-server (github.com/fsouza/fake-gcs-server), the GCS JSON API in memory: what
    gcsfs talks to with STORAGE_EMULATOR_HOST. It checks no credentials or permissions."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(FAKE_GCS, workdir, "gs:// sources")

    def env(self) -> dict[str, str]:
        """What a wq process needs to reach this server."""
        return {**OFFLINE_ENV, "STORAGE_EMULATOR_HOST": self.url}

    def argv(self) -> list[str]:
        address = ["-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port)]
        return [str(FAKE_GCS), *address, "-backend", "memory", "-log-level", "warn"]

    def put(self, bucket: str, key: str, data: bytes) -> str:
        """Upload through the JSON API (creating the bucket); returns the object's gs:// URL."""
        create = urllib.request.Request(
            f"{self.url}/storage/v1/b",
            data=json.dumps({"name": bucket}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(create, timeout=30):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # the bucket is there already
                raise
        query = urllib.parse.urlencode({"uploadType": "media", "name": key})
        upload = urllib.request.Request(
            f"{self.url}/upload/storage/v1/b/{bucket}/o?{query}", data=data, method="POST"
        )
        with urllib.request.urlopen(upload, timeout=30):
            pass
        return f"gs://{bucket}/{key}"


def drop_after(body: bytes, lines: int, until: Callable[[], bool] | None = None) -> Route:
    """A route that announces the whole body, sends its first `lines` lines and hangs up: at
    once, or once `until()` holds (polled for up to HOLD_S seconds). A client may learn of the
    hang-up before it has used the lines it received (aiohttp's stream raises at once, its
    buffer unread): a test of what the client did with some of them waits for that first."""

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        cut = 0
        for _ in range(lines):
            cut = body.index(b"\n", cut) + 1
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:cut])
        handler.wfile.flush()
        deadline = time.monotonic() + HOLD_S
        while until is not None and not until() and time.monotonic() < deadline:
            time.sleep(0.05)  # past the deadline the test's own assertions say what is missing
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    return route
