"""The exporter's HTTP server: /metrics as prometheus_client serves it and, with --ui, the
read-only web page of the runs (wq/read/ui) and the JSON it reads.

    /                                   the page (index.html; static files under /static/)
    /api/runs                           every run, each as `wq status --json` prints it
    /api/runs/RUN                       the run as `wq status --json` prints it
    /api/runs/RUN/histogram             attempts by duration
    /api/runs/RUN/timeline              items finished per time bucket
    /api/runs/RUN/dead                  dead items with their errors (the first 100)
    /api/runs/RUN/search?q=TEXT         records by item text or position (50 at most)
    /api/runs/RUN/report.jsonl, .csv    `wq report` and `wq report --format csv`, streamed

Only GET and HEAD: nothing here can change a run. Without --ui every path serves the metrics,
as prometheus_client's own server does. A Redis outage answers 503 with the reason, which the
page shows: never an empty list of runs.
"""

import io
import json
import mimetypes
import socket
import struct
import urllib.parse
from collections.abc import Callable, Iterable
from importlib import resources
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from wq.base.errors import ConfigError, RunFormatError, WqError
from wq.read import report
from wq.read.ledger import iter_records
from wq.read.page_data import PageData
from wq.store.connection import REDIS_ERRORS

# Why a page could not be read (answered 503), and why a download was cut short.
_UNREADABLE: tuple[type[Exception], ...] = (WqError, *REDIS_ERRORS, OSError)
_CUT_SHORT: tuple[type[Exception], ...] = (WqError, *REDIS_ERRORS)

StartResponse = Callable[..., Callable[[bytes], object]]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Scripts, styles and data only from this server; no inline script or style, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SAFE_HEADERS = [
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]
STATIC = "static"
DOWNLOADS = {"report.jsonl": "jsonl", "report.csv": "csv"}
DOWNLOAD_TYPES = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}
STREAM_BUFFER = 64 * 1024  # bytes of report sent per write
ABORT = "wq.abort"  # in a request's environ: ends its connection with a reset


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files (wq/read/ui and its vendor/ folder) by URL path, read once."""
    files: dict[str, tuple[bytes, str]] = {}
    root = resources.files("wq.read") / "ui"
    for folder, prefix in ((root, ""), (root / "vendor", "vendor/")):
        for entry in folder.iterdir():
            if entry.is_file() and not entry.name.endswith(".json"):
                kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind.endswith("javascript"):
                    kind += "; charset=utf-8"
                files[f"/{STATIC}/{prefix}{entry.name}"] = (entry.read_bytes(), kind)
    files["/"] = files.pop(f"/{STATIC}/index.html")
    return files


class WebApp:
    """The WSGI app: /metrics always, the page and its API when `data` is given."""

    def __init__(self, metrics: App, data: PageData | None) -> None:
        self.metrics = metrics
        self.data = data
        self.files = static_files() if data is not None else {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if self.data is None or path == "/metrics":
            return self.metrics(environ, start_response)
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), *SAFE_HEADERS])
            return [b""]
        status, headers, body = self._route(self.data, path, environ)
        if not isinstance(body, bytes):  # a download: written as it is read
            if method == "HEAD":
                start_response(status, [*headers, *SAFE_HEADERS])
                return [b""]
            body(start_response(status, [*headers, *SAFE_HEADERS]))
            return []
        start_response(status, [*headers, ("Content-Length", str(len(body))), *SAFE_HEADERS])
        return [b"" if method == "HEAD" else body]

    def _route(
        self, data: PageData, path: str, environ: dict[str, Any]
    ) -> tuple[str, list[tuple[str, str]], bytes | Callable[[Callable[[bytes], object]], None]]:
        if path in self.files:
            body, kind = self.files[path]
            return "200 OK", [("Content-Type", kind)], body
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] != ["api", "runs"] or len(parts) > 4:
            return as_json("404 Not Found", {"error": f"no such page: {path}"})
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        try:
            if len(parts) == 2:
                return as_json("200 OK", data.list_runs())
            run = parts[2]
            if len(parts) == 3:
                return as_json("200 OK", data.status(run))
            what = parts[3]
            if what in DOWNLOADS:
                return self._download(data, run, DOWNLOADS[what], environ.get(ABORT))
            if what == "search":
                return as_json("200 OK", data.search(run, query.get("q", [""])[0]))
            reader = {"histogram": data.histogram, "timeline": data.timeline, "dead": data.dead}
            if what not in reader:
                return as_json("404 Not Found", {"error": f"no such page: {path}"})
            return as_json("200 OK", reader[what](run))
        except RunFormatError as exc:
            return as_json("409 Conflict", {"error": str(exc)})
        except ConfigError as exc:
            return as_json("400 Bad Request", {"error": str(exc)})
        except _UNREADABLE as exc:
            data.close()  # the next request connects afresh (a cluster's layout may change)
            reason = str(exc) or type(exc).__name__
            return as_json("503 Service Unavailable", {"error": f"Redis: {reason}"})

    def _download(
        self, data: PageData, run: str, fmt: str, abort: Callable[[], None] | None
    ) -> tuple[str, list[tuple[str, str]], bytes | Callable[[Callable[[bytes], object]], None]]:
        queue, status = data.report_status(run)
        if not status.seeded:
            return as_json("404 Not Found", {"error": f"run {run!r} is not seeded"})
        headers = [
            ("Content-Type", DOWNLOAD_TYPES[fmt]),
            ("Content-Disposition", f'attachment; filename="{run}.{fmt}"'),
        ]

        def stream(write: Callable[[bytes], object]) -> None:
            # The report writer of `wq report`, onto the socket: the same bytes.
            sink = io.BufferedWriter(_Sink(write), STREAM_BUFFER)
            try:
                with io.TextIOWrapper(sink, encoding="utf-8", newline="") as out:
                    report.write(iter_records(queue), fmt, out)
            except _CUT_SHORT:
                # The status line is sent: only a reset connection can tell the browser that
                # the file is cut short (HTTP/1.0 ends a body of no length at a clean close).
                data.close()
                if abort is not None:
                    abort()

        return "200 OK", headers, stream


class _Sink(io.RawIOBase):
    """A writable file that hands its bytes to WSGI's write()."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._write(bytes(b))
        return len(b)


def as_json(
    status: str, value: object
) -> tuple[str, list[tuple[str, str]], bytes | Callable[[Callable[[bytes], object]], None]]:
    body = json.dumps(value, sort_keys=True).encode()
    return status, [("Content-Type", "application/json")], body


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a request in progress does not hold up the exporter's exit

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aborted: set[socket.socket] = set()

    def abort(self, request: socket.socket) -> None:
        """Ends `request`'s connection with a reset (RST) instead of a close (FIN)."""
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.aborted.add(request)

    def shutdown_request(self, request: Any) -> None:
        if request in self.aborted:
            self.aborted.discard(request)
            self.close_request(request)  # no shutdown(SHUT_WR): that would send a clean FIN
        else:
            super().shutdown_request(request)


class _QuietHandler(WSGIRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """No line per request: a scrape every few seconds would fill the log."""

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        connection = self.connection
        environ[ABORT] = lambda: self.server.abort(connection)
        return environ


def listen(address: str, port: int, app: App) -> WSGIServer:
    """A threaded HTTP server for `app` on address:port (IPv6 when the address is one)."""
    family = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    server_class = type("Server", (_Server,), {"address_family": family[0][0]})
    return make_server(address, port, app, server_class, handler_class=_QuietHandler)
