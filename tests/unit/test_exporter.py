"""`wq exporter` against a real Redis: each run's exposition in every state, parsed as
Prometheus parses it; the histogram; purged, expired and lost runs; Redis down; the command
itself; and what a scrape costs Redis while a million items are seeded and worked."""

import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from tests.metric_names import METRICS
from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.conftest import make_queue
from tests.unit.test_worker import Recorder, config, quiet
from wq.base.item import encode
from wq.base.logs import EventLog
from wq.read.exporter import CLIENT_NAME, RunsCollector
from wq.seed.seeder import seed_items
from wq.store import layout
from wq.store.completions import Finished
from wq.store.connection import RedisSettings
from wq.store.leases import FailOutcome
from wq.store.local_redis import RedisServer
from wq.store.queue import RunQueue
from wq.work.worker import EXIT_DRAINED, Worker

# A scrape of a run reads what is needed in O(1) calls: no Redis call of it may hold the
# server for longer than this (Redis serves one call at a time).
CALL_BAR_MS = 50.0
PER_RUN = {
    "wq_run_items",
    "wq_items",
    "wq_items_completed_total",
    "wq_executions_total",
    "wq_retries_total",
    "wq_stale_results_total",
    "wq_run_seeded",
    "wq_run_drained",
    "wq_run_lost",
    "wq_run_items_per_second",
    "wq_item_duration_seconds_bucket",
    "wq_item_duration_seconds_sum",
    "wq_item_duration_seconds_count",
}
FLAGS = {"wq_run_seeded": 0.0, "wq_run_drained": 0.0}


class Exposition:
    """One scrape's text, parsed by prometheus_client's parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = list(text_string_to_metric_families(text))

    def run(self, run: str) -> dict[str, float]:
        """The run's samples: name{other labels} -> value."""
        out: dict[str, float] = {}
        for family in self.families:
            for s in family.samples:
                if s.labels.get("run") == run:
                    rest = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "run")
                    out[f"{s.name}{{{rest}}}" if rest else s.name] = s.value
        return out

    def runs(self) -> set[str]:
        return {s.labels["run"] for f in self.families for s in f.samples if "run" in s.labels}

    @property
    def up(self) -> float:
        [value] = [s.value for f in self.families for s in f.samples if s.name == "wq_redis_up"]
        return value


def scrape(collector: RunsCollector) -> Exposition:
    registry = CollectorRegistry()
    registry.register(collector)
    return Exposition(generate_latest(registry).decode())


def collector_for(url: str, runs: tuple[str, ...] = ()) -> RunsCollector:
    return RunsCollector(RedisSettings.from_url(url), runs, EventLog(level="error"))


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, to stop, restart or reconfigure."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def exporter(redis_url: str) -> Iterator[RunsCollector]:
    collector = collector_for(redis_url)
    yield collector
    collector.close()


def seed(queue: RunQueue, values: list[object]) -> None:
    seed_items(queue, [encode(v) for v in values])


def histogram(samples: dict[str, float]) -> tuple[list[float], float, float]:
    """(cumulative bucket counts in bound order, sum, count)."""
    bounds = [*layout.DURATION_BUCKETS_S, float("inf")]
    buckets = [samples[f"wq_item_duration_seconds_bucket{{le={b}}}"] for b in _le(bounds)]
    return (
        buckets,
        samples["wq_item_duration_seconds_sum"],
        samples["wq_item_duration_seconds_count"],
    )


def _le(bounds: list[float]) -> list[str]:
    return ["+Inf" if b == float("inf") else repr(float(b)) for b in bounds]


def test_a_run_in_each_state(redis_url: str, run_id: str) -> None:
    names = {s: f"{run_id}-{s}" for s in ("unseeded", "running", "drained", "dead", "lost")}
    queues = {s: make_queue(redis_url, run) for s, run in names.items()}
    collector = collector_for(redis_url, tuple(names.values()))

    running = queues["running"]
    seed(running, ["a", "b", "c", "d"])
    held = running.leases.lease(3, 30, "t").items
    assert running.leases.complete("t", "w", [Finished(held[0].position, 20)]) == []
    retried = running.leases.fail("t", held[1].position, "flaky", 3, duration_ms=3000)
    assert retried is FailOutcome.RETRY
    seed(queues["drained"], ["a", "b"])
    assert Worker(queues["drained"], Recorder(), config(), quiet()).run() == EXIT_DRAINED
    seed(queues["dead"], ["ok", "poison"])
    dead_config = config(max_attempts=1)
    assert Worker(queues["dead"], Recorder(fail="poison"), dead_config, quiet()).run() == 0
    seed(queues["lost"], ["a"])
    assert names["lost"] in scrape(collector).runs()
    queues["lost"].client.delete(queues["lost"].keys.meta)  # as an eviction would

    exposition = scrape(collector)
    assert exposition.up == 1
    assert exposition.run(names["unseeded"]) == {**FLAGS, "wq_run_lost": 0}
    assert exposition.run(names["lost"]) == {**FLAGS, "wq_run_lost": 1}

    now = exposition.run(names["running"])
    rate = now.pop("wq_run_items_per_second", None)
    assert rate is None or rate > 0
    buckets, total_s, count = histogram(now)
    assert {k: v for k, v in now.items() if not k.startswith("wq_item_duration")} == {
        "wq_run_items": 4,
        "wq_items{state=pending}": 2,  # one never leased, one back for a retry
        "wq_items{state=in_flight}": 1,
        "wq_items{state=done}": 1,
        "wq_items{state=dead}": 0,
        "wq_items_completed_total": 1,
        "wq_executions_total": 3,
        "wq_retries_total": 1,
        "wq_stale_results_total": 0,
        "wq_run_seeded": 1,
        "wq_run_drained": 0,
        "wq_run_lost": 0,
    }
    # 20 ms in the bucket up to 0.025 s, 3 s in the one up to 5 s; cumulative.
    assert buckets == [0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    assert (total_s, count) == (pytest.approx(3.02), 2)

    drained = exposition.run(names["drained"])
    assert "wq_run_items_per_second" in drained
    assert (drained["wq_run_drained"], drained["wq_items{state=done}"]) == (1, 2)
    assert drained["wq_item_duration_seconds_count"] == 2
    dead = exposition.run(names["dead"])
    assert (dead["wq_run_drained"], dead["wq_items{state=dead}"]) == (1, 1)
    assert (dead["wq_items{state=done}"], dead["wq_item_duration_seconds_count"]) == (1, 2)
    for samples in (now, drained, dead):
        assert {name.split("{")[0] for name in samples} | {"wq_run_items_per_second"} == PER_RUN
    assert scrape(collector).run(names["lost"])["wq_run_lost"] == 1  # for as long as it runs
    for queue in queues.values():
        queue.close()
    collector.close()


def test_help_and_type_lines_name_each_family_once(
    exporter: RunsCollector, queue: RunQueue
) -> None:
    """What promtool checks first: one HELP and one TYPE per family, before its samples."""
    seed(queue, ["a"])
    # Worked, so that every family has samples (the rate is left out until an item is done).
    assert Worker(queue, Recorder(), config(), quiet()).run() == EXIT_DRAINED
    text = scrape(exporter).text
    kinds: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name not in kinds
            kinds[name] = kind
    # Exactly the contract the chart's dashboard and alerts are checked against.
    assert kinds == METRICS
    helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")]
    assert sorted(helps) == sorted(kinds)


def test_the_histogram_counts_every_attempt_of_a_run_without_deaths(
    exporter: RunsCollector, queue: RunQueue
) -> None:
    values = [f"item-{n}" for n in range(30)] + ["poison"]
    seed(queue, values)
    handler = Recorder(sleep_s=0.001, fail="poison")
    assert Worker(queue, handler, config(max_attempts=3), quiet()).run() == EXIT_DRAINED
    samples = scrape(exporter).run(queue.run)
    buckets, total_s, count = histogram(samples)
    assert count == buckets[-1] == samples["wq_executions_total"] == 30 + 3
    assert samples["wq_retries_total"] == 2
    assert buckets == sorted(buckets)
    assert 0 < total_s < 30


def test_a_purged_or_expired_run_leaves_the_output_and_is_not_lost(
    exporter: RunsCollector, redis_url: str, run_id: str
) -> None:
    purged, expired = (make_queue(redis_url, f"{run_id}-{n}") for n in ("purged", "expired"))
    seed(purged, ["a"])
    seed(expired, ["a"])
    assert Worker(expired, Recorder(), config(results_ttl_s=1), quiet()).run() == EXIT_DRAINED
    assert {purged.run, expired.run} <= scrape(exporter).runs()
    purged.admin.purge()
    wait_until("the drained run's keys to expire", lambda: not expired.reading.status().seeded, 10)
    assert not {purged.run, expired.run} & scrape(exporter).runs()
    assert not exporter.lost
    purged.close()
    expired.close()


def test_redis_down_shows_as_such_never_as_an_empty_queue(private_redis: RedisServer) -> None:
    server = private_redis
    queue = make_queue(server.url, "r")
    seed(queue, ["a", "b"])
    collector = collector_for(server.url)
    assert scrape(collector).run("r")["wq_items{state=pending}"] == 2
    server.stop()

    started = time.monotonic()
    down = scrape(collector)
    assert time.monotonic() - started < 2  # no retries inside a scrape
    assert down.up == 0
    assert [f.name for f in down.families] == ["wq_redis_up"]

    server.start()  # the same port, without persistence: the run is gone with the restart
    for _ in range(2):  # and stays reported lost
        after = scrape(collector)
        assert after.up == 1
        assert after.run("r") == {**FLAGS, "wq_run_lost": 1}
    queue.close()
    collector.close()


def test_a_redis_that_never_answered_is_down(tmp_path: Path) -> None:
    from wq.store.local_redis import free_port

    collector = collector_for(f"redis://127.0.0.1:{free_port()}/0", ("r",))
    exposition = scrape(collector)
    assert (exposition.up, exposition.runs()) == (0, set())


def wait_for_start(log: Path) -> str:
    """The /metrics URL the exporter's start line gives."""

    def started() -> str | None:
        for line in log.read_text().splitlines():
            if "event=exporter.start" in line:
                return line.split(" metrics=", 1)[1].split()[0]
        return None

    return wait_until(lambda: f"the exporter to start: {log.read_text()}", started, 30)


def get(url: str) -> Exposition:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return Exposition(response.read().decode())


@pytest.mark.parametrize("chosen", [False, True], ids=["every-run", "--run"])
def test_the_command_serves_every_run_or_those_chosen_and_stops_on_sigterm(
    redis_url: str, run_id: str, tmp_path: Path, chosen: bool
) -> None:
    mine, other = f"{run_id}-a", f"{run_id}-b"
    for run in (mine, other):
        assert wq("seed", "--run", run, "x", env={"WQ_REDIS_URL": redis_url}).returncode == 0
    # WQ_RUN names one run for the other commands; the exporter reads every run regardless.
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": mine}
    if chosen:
        env["WQ_EXPORTER_RUNS"] = f"{mine}, {run_id}-c"
    log = tmp_path / "exporter.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            wq_argv("exporter", "--port", "0", "--address", "127.0.0.1"),
            env=wq_env(env),
            stderr=stderr,
        )
    try:
        exposition = get(wait_for_start(log))
        assert exposition.up == 1
        if chosen:
            assert exposition.runs() == {mine, f"{run_id}-c"}
        else:
            assert {mine, other} <= exposition.runs()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "event=exporter.stopped" in log.read_text()


def test_a_port_in_use_is_a_clear_error(redis_url: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = wq("exporter", "--address", "127.0.0.1", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


@pytest.mark.slow
def test_no_call_of_a_scrape_holds_redis_while_a_million_items_are_seeded_and_worked(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    """Redis' own clock for each call the exporter makes (SLOWLOG, which logs every call here
    and names the client): a loaded machine slows the test, not what it measures."""
    server = private_redis
    admin = server.connect()
    admin.config_set("slowlog-max-len", 500_000)
    admin.config_set("slowlog-log-slower-than", 0)
    items = tmp_path / "items.txt"
    items.write_text("".join(f"item-{n}\n" for n in range(1_000_000)))
    env = {"WQ_REDIS_URL": server.url, "WQ_LOG_LEVEL": "warning"}
    assert wq("seed", "--run", "range", "--range", "0:1000000", env=env).returncode == 0
    quietly = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    seeding = subprocess.Popen(
        wq_argv("seed", "--run", "list", "--items-file", str(items)), env=wq_env(env), **quietly
    )
    work = ["work", "--run", "range", "--handler", "python", "--python"]
    workers = [
        subprocess.Popen(
            wq_argv(*work, "tests.unit.sample_handlers:record"), env=wq_env(env), **quietly
        )
        for _ in range(2)
    ]
    collector = collector_for(server.url)
    scrapes: list[Exposition] = []
    admin.slowlog_reset()
    try:

        def seeded_and_worked() -> bool:
            scrapes.append(scrape(collector))
            done = scrapes[-1].run("range").get("wq_items{state=done}", 0)
            return seeding.poll() is not None and done >= 20_000 and len(scrapes) >= 20

        wait_until("the list to be seeded and 20k items done", seeded_and_worked, 120, 0.05)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in [*workers, seeding]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert seeding.returncode == 0
    calls = [e for e in admin.slowlog_get(-1) if e.get("client_name") == CLIENT_NAME.encode()]
    slowest = max(calls, key=lambda e: int(e["duration"]))
    # INFO, SCAN and one script call per run at least, for every scrape.
    assert len(calls) >= 3 * len(scrapes)
    assert int(slowest["duration"]) / 1000 < CALL_BAR_MS, slowest
    assert scrapes[-1].run("list")["wq_run_items"] == 1_000_000
    collector.close()
    admin.close()
