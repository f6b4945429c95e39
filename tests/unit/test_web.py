"""The exporter's HTTP server (wq.read.web) against a real Redis, over real HTTP: /metrics as
before, the page's JSON equal to what the commands print, downloads byte for byte `wq report`,
read-only methods, the security headers, a Redis outage as such, the timeline and the search.
The page itself, in a browser: test_ui_page.py."""

import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.exposition import make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from tests.unit.cli_runner import wq
from tests.unit.conftest import make_queue
from tests.unit.test_exporter import Exposition, collector_for, private_redis, seed
from tests.unit.test_worker import Recorder, config, quiet
from wq.read import page_data, timeline
from wq.read.page_data import PageData
from wq.read.status_view import status_dict
from wq.read.web import CSP, WebApp, listen
from wq.store.connection import RedisSettings
from wq.store.local_redis import RedisServer
from wq.store.queue import RunQueue
from wq.work.worker import EXIT_DRAINED, Worker

__all__ = ["private_redis"]  # a fixture, used below by name


class Served:
    """An exporter's HTTP server in a thread of the test."""

    def __init__(self, url: str, ui: bool) -> None:
        registry = CollectorRegistry()
        self.collector = collector_for(url)
        registry.register(self.collector)
        self.data = PageData(RedisSettings.from_url(url)) if ui else None
        self.server = listen("127.0.0.1", 0, WebApp(make_wsgi_app(registry), self.data))
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def request(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str, expect: int = 200) -> Any:
        status, headers, body = self.request(path)
        assert (status, headers["Content-Type"]) == (expect, "application/json"), body
        return json.loads(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.collector.close()
        if self.data is not None:
            self.data.close()


@pytest.fixture
def served(redis_url: str) -> Iterator[Served]:
    s = Served(redis_url, ui=True)
    yield s
    s.close()


def worked(queue: RunQueue, values: list[object], fail: str = "poison") -> None:
    seed(queue, values)
    handler = Recorder(fail=fail)
    assert Worker(queue, handler, config(max_attempts=1), quiet()).run() == EXIT_DRAINED


def test_without_ui_every_path_serves_the_metrics_as_before(
    redis_url: str, queue: RunQueue
) -> None:
    seed(queue, ["a"])
    s = Served(redis_url, ui=False)
    try:
        for path in ("/metrics", "/", "/api/runs"):
            status, _, body = s.request(path)
            assert status == 200
            assert Exposition(body.decode()).run(queue.run)["wq_run_items"] == 1
    finally:
        s.close()


def test_metrics_stay_at_their_path_with_the_ui(served: Served, queue: RunQueue) -> None:
    seed(queue, ["a", "b"])
    status, headers, body = served.request("/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert Exposition(body.decode()).run(queue.run)["wq_run_items"] == 2


def test_the_page_and_its_files_carry_the_security_headers(served: Served) -> None:
    for path in ("/", "/static/app.js", "/static/vendor/uPlot.iife.min.js", "/api/runs"):
        status, headers, body = served.request(path)
        assert status == 200, path
        assert headers["Content-Security-Policy"] == CSP
        assert "unsafe-inline" not in CSP
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert body
    _, headers, page = served.request("/")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"<script>" not in page  # no inline script: the CSP would refuse it anyway
    assert served.request("/static/nothing.js")[0] == 404
    assert served.request("/static/../web.py")[0] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_and_head_nothing_changes_a_run(
    served: Served, queue: RunQueue, method: str
) -> None:
    seed(queue, ["a"])
    before = status_dict(queue)
    for path in ("/", f"/api/runs/{queue.run}", f"/api/runs/{queue.run}/report.jsonl"):
        status, headers, _ = served.request(path, method)
        assert (status, headers["Allow"]) == (405, "GET, HEAD")
    after = status_dict(queue)
    assert {**after, "expires_in_s": None} == {**before, "expires_in_s": None}


def test_a_run_reads_as_wq_status_json_prints_it(
    served: Served, queue: RunQueue, redis_url: str
) -> None:
    worked(queue, ["a", "b", "poison"])
    queue.admin.record_scaling("r-1-worker", 2, 1, "drained")  # an autoscaler's last word
    shown = served.json(f"/api/runs/{queue.run}")
    printed = wq("status", "--json", "--run", queue.run, env={"WQ_REDIS_URL": redis_url})
    expected = json.loads(printed.stdout)
    assert shown["expires_in_s"] == pytest.approx(expected.pop("expires_in_s"), abs=5)
    assert {**shown, "expires_in_s": None} == {**expected, "expires_in_s": None}
    assert (shown["done"], shown["dead"], shown["drained"]) == (2, 1, True)
    assert shown["autoscale"]["target"] == 1
    listed = {r["run"]: r for r in served.json("/api/runs")}[queue.run]
    assert listed.pop("expires_in_s") == pytest.approx(shown["expires_in_s"], abs=5)
    assert listed == expected  # the list shows each run as `wq status --json` does too


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_downloads_are_wq_report_byte_for_byte(
    served: Served, queue: RunQueue, redis_url: str, fmt: str
) -> None:
    # Markup, quotes, a formula and non-ASCII text: what the writer escapes, the download too.
    worked(queue, ["<script>alert(1)</script>", '"q",x', "=1+1", "ü €", {"k": [1]}, "poison"])
    status, headers, body = served.request(f"/api/runs/{queue.run}/report.{fmt}")
    printed = wq("report", "--run", queue.run, "--format", fmt, env={"WQ_REDIS_URL": redis_url})
    assert status == 200
    assert body == printed.stdout.encode()
    assert body.count(b"\n") == 6 + (fmt == "csv")
    assert headers["Content-Disposition"] == f'attachment; filename="{queue.run}.{fmt}"'
    head = served.request(f"/api/runs/{queue.run}/report.{fmt}", "HEAD")
    assert (head[0], head[2]) == (200, b"")


def test_a_download_streams_a_run_bigger_than_its_buffer(served: Served, queue: RunQueue) -> None:
    seed(queue, [f"item-{n:05d}-" + "x" * 40 for n in range(5000)])  # ~300 kB: several writes
    _, _, body = served.request(f"/api/runs/{queue.run}/report.jsonl")
    lines = body.decode().splitlines()
    assert len(lines) == 5000
    assert json.loads(lines[-1])["item"].startswith("item-04999-")


def test_mistakes_are_named(served: Served, queue: RunQueue) -> None:
    assert "not valid" in served.json("/api/runs/bad%20id", expect=400)["error"]
    assert "no such page" in served.json(f"/api/runs/{queue.run}/nothing", expect=404)["error"]
    assert "no such page" in served.json("/api/elsewhere", expect=404)["error"]
    missing = served.json(f"/api/runs/{queue.run}/report.csv", expect=404)
    assert "not seeded" in missing["error"]
    assert served.json(f"/api/runs/{queue.run}")["seeded"] is False


def test_redis_down_is_an_error_never_an_empty_list(private_redis: RedisServer) -> None:
    s = Served(private_redis.url, ui=True)
    try:
        assert s.json("/api/runs") == []
        private_redis.stop()
        for path in ("/api/runs", "/api/runs/r", "/api/runs/r/timeline", "/api/runs/r/report.csv"):
            error = s.json(path, expect=503)["error"]
            assert error.startswith("Redis: "), error
        assert s.request("/")[0] == 200  # the page itself, which says so
        private_redis.start()
        assert s.json("/api/runs") == []  # and back once Redis is
    finally:
        s.close()


def read_to_the_end(response: http.client.HTTPResponse) -> int:
    """Bytes read until the body ends cleanly (or an error ends it)."""
    total = 0
    while chunk := response.read(64 * 1024):
        total += len(chunk)
    return total


def test_a_download_cut_short_by_redis_fails_for_the_client(private_redis: RedisServer) -> None:
    """Redis gone in the middle of a download: the browser must see a failed download (a
    reset connection), never a clean end of a shorter file."""
    s = Served(private_redis.url, ui=True)
    queue = make_queue(private_redis.url, "big", budget=0)
    # Some 20 MB of report: far more than the socket buffers hold while the client waits.
    seed(queue, [f"{n:06d}-" + "x" * 300 for n in range(60_000)])
    connection = http.client.HTTPConnection("127.0.0.1", s.server.server_port, timeout=60)
    try:
        connection.request("GET", "/api/runs/big/report.jsonl")
        response = connection.getresponse()
        assert response.status == 200
        received = response.read(64 * 1024)
        assert received.startswith(b'{"position":0,')
        private_redis.stop()
        with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
            read_to_the_end(response)
    finally:
        connection.close()
        s.close()
        private_redis.start()


def test_dead_items_come_with_their_errors(served: Served, queue: RunQueue) -> None:
    worked(queue, ["a", "poison", "b"])
    dead = served.json(f"/api/runs/{queue.run}/dead")
    assert dead["count"] == 1
    [item] = dead["items"]
    assert (item["position"], item["item"], item["state"]) == (1, "poison", "dead")
    assert "poison" in item["error"]


def test_search_by_text_or_position_is_bounded(
    served: Served, queue: RunQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(queue, ["apple", "<b>Banana</b>", "cherry", "12", *[f"x{n}" for n in range(100)]])
    found = served.json(f"/api/runs/{queue.run}/search?q=banana")
    assert [m["item"] for m in found["matches"]] == ["<b>Banana</b>"]
    assert (found["complete"], found["searched"]) == (True, 104)
    by_position = served.json(f"/api/runs/{queue.run}/search?q=2")
    # Position 2, and every item whose text holds "2" (the item "12" at position 3, x2, ...).
    assert [m["position"] for m in by_position["matches"]][:2] == [2, 3]
    assert served.json(f"/api/runs/{queue.run}/search?q=nothing")["matches"] == []
    monkeypatch.setattr(page_data, "SEARCH_MATCHES", 5)
    capped = served.json(f"/api/runs/{queue.run}/search?q=x")
    assert (len(capped["matches"]), capped["complete"]) == (5, False)


def test_histogram_counts_every_attempt(served: Served, queue: RunQueue) -> None:
    worked(queue, ["a", "b", "poison"])
    histogram = served.json(f"/api/runs/{queue.run}/histogram")
    assert sum(histogram["counts"]) == 3
    assert len(histogram["bounds_s"]) == len(histogram["counts"])
    assert histogram["bounds_s"][-1] is None


def test_the_timeline_counts_every_finished_item_and_is_read_once_drained(
    served: Served, queue: RunQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert served.json(f"/api/runs/{queue.run}/timeline")["counts"] == []
    worked(queue, [f"i{n}" for n in range(700)] + ["poison"])  # more than a page of the ledger
    reads: list[str] = []
    original = RunQueue.__init__

    def counting(self: RunQueue, *args: Any) -> None:
        original(self, *args)
        real = self.reading.finish_times

        def finish_times() -> Iterator[list[int]]:
            reads.append(self.run)
            return real()

        self.reading.finish_times = finish_times  # type: ignore[method-assign]

    monkeypatch.setattr(RunQueue, "__init__", counting)
    line = served.json(f"/api/runs/{queue.run}/timeline")
    assert sum(line["counts"]) == 701
    assert line["start_s"] % line["bucket_s"] == 0
    assert served.json(f"/api/runs/{queue.run}/timeline") == line
    assert reads == [queue.run]  # drained: read once


def test_timeline_buckets_stay_few_and_round() -> None:
    second = 1_800_000_000
    ms = [(second + s) * 1000 + 500 for s in range(0, 3600, 3)]  # an item every 3 s for 1 h
    line = timeline.timeline([ms[:600], ms[600:]])
    assert line.bucket_s == 15  # 3600 s / 15 s = 240 buckets, MAX_BUCKETS
    assert len(line.counts) <= timeline.MAX_BUCKETS
    assert sum(line.counts) == 1200
    assert line.start_s == second
    short = timeline.timeline([[second * 1000, second * 1000 + 999, second * 1000 + 1000]])
    assert (short.start_s, short.bucket_s, short.counts) == (second, 1, [2, 1])


def test_the_static_files_are_package_data() -> None:
    """What the wheel carries is what pyproject's package-data globs name: every file of ui/."""
    import tomllib

    import wq

    root = Path(wq.__file__).parent
    globs = tomllib.loads((root.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["wq.read"]
    files = {p for p in (root / "read" / "ui").rglob("*") if p.is_file()}
    matched = {p for g in globs for p in (root / "read").glob(g)}
    assert files == matched
