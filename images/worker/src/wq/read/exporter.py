"""`wq exporter`: every run on a Redis as Prometheus metrics, read afresh at each scrape.

A scrape makes a few Redis calls: INFO server, SCAN for the runs (unless they are given), and
one status.lua call per run, whose reads are O(1) whatever the run's size. None is retried
and each has a short timeout: a scrape answers at once, with wq_redis_up 0 and no run metrics
while Redis is out of reach, since an outage must never look like an empty queue.

A run seen seeded whose keys are gone is lost if the server restarted meanwhile (its run_id
changed) or if some of its keys are still there (partial eviction); it is then reported with
wq_run_lost 1 as long as the exporter runs. A run whose keys all went on the same server was
purged, or expired after its results TTL: it leaves the output.
"""

import math
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import make_wsgi_app
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from wq.base.errors import ConfigError, RunFormatError, RunLost, WqError
from wq.base.logs import EventLog
from wq.base.status import RunStatus
from wq.read.page_data import PageData
from wq.read.web import WebApp, listen
from wq.store import layout
from wq.store.connection import (
    REDIS_ERRORS,
    Client,
    RedisSettings,
    Retrying,
    raise_if_no_such_database,
)
from wq.store.queue import RunQueue
from wq.store.survey import find_runs, server_identity

# Redis timeouts of a scrape (seconds): well inside Prometheus' default scrape timeout of 10 s.
CONNECT_TIMEOUT_S = 1.0
CALL_TIMEOUT_S = 2.0
CLIENT_NAME = "wq-exporter"  # in CLIENT LIST and SLOWLOG, to tell the exporter's calls apart
# `le` as prometheus_client's own histograms write it ("0.005", "1.0", "+Inf").
BUCKET_BOUNDS: list[str] = [
    floatToGoString(b)  # type: ignore[no-untyped-call]
    for b in (*layout.DURATION_BUCKETS_S, math.inf)
]
STATES = ("pending", "in_flight", "done", "dead")
# Why a scrape could not read Redis (wq_redis_up 0).
_UNREADABLE: tuple[type[Exception], ...] = (WqError, *REDIS_ERRORS, OSError)


class Families:
    """The metric families of one scrape, filled run by run."""

    def __init__(self) -> None:
        run = ["run"]
        self.items = GaugeMetricFamily("wq_run_items", "Items seeded in the run.", labels=run)
        self.by_state = GaugeMetricFamily(
            "wq_items",
            "Items of the run by state: pending (not leased, or back for a retry), in_flight "
            "(leased), done, dead (attempts used up).",
            labels=["run", "state"],
        )
        self.completed = CounterMetricFamily(
            "wq_items_completed", "Items recorded done.", labels=run
        )
        self.executions = CounterMetricFamily(
            "wq_executions",
            "Attempts started: items leased to a worker (a lease handed back unused counts too).",
            labels=run,
        )
        self.retries = CounterMetricFamily(
            "wq_retries",
            "Attempts that came back for a retry: failed, or their worker died.",
            labels=run,
        )
        self.stale = CounterMetricFamily(
            "wq_stale_results",
            "Late results rejected: their lease had expired and the item had been taken back.",
            labels=run,
        )
        self.seeded = GaugeMetricFamily(
            "wq_run_seeded", "1 if the run is seeded, else 0.", labels=run
        )
        self.drained = GaugeMetricFamily(
            "wq_run_drained",
            "1 if the run is drained (nothing pending or in flight: every item done or dead).",
            labels=run,
        )
        self.lost = GaugeMetricFamily(
            "wq_run_lost",
            "1 if the run was seeded and its keys are gone (Redis restarted without "
            "persistence, or evicted some of them); its items cannot be recovered.",
            labels=run,
        )
        self.rate = GaugeMetricFamily(
            "wq_run_items_per_second",
            "Items done per second since the run's first lease, up to now, or to its last "
            "item once drained, so it stays what it was at the drain (as `wq status` shows it).",
            labels=run,
        )
        self.durations = HistogramMetricFamily(
            "wq_item_duration_seconds",
            "How long attempts took: done items' accepted attempts and failed attempts (not "
            "those of a worker that died), in whole milliseconds.",
            labels=run,
        )

    def add_run(self, status: RunStatus, durations: layout.Durations) -> None:
        run = status.run
        self.flags(run, seeded=True, drained=status.drained, lost=False)
        self.items.add_metric([run], status.total)
        counts = (status.pending, status.in_flight, status.done, status.dead)
        for state, n in zip(STATES, counts, strict=True):
            self.by_state.add_metric([run, state], n)
        self.completed.add_metric([run], status.done)
        self.executions.add_metric([run], status.executions)
        self.retries.add_metric([run], status.retried)
        self.stale.add_metric([run], status.stale)
        if status.rate is not None:
            self.rate.add_metric([run], status.rate)
        cumulative, buckets = 0, []
        for bound, n in zip(BUCKET_BOUNDS, durations.counts, strict=True):
            cumulative += n
            buckets.append((bound, float(cumulative)))
        self.durations.add_metric([run], buckets, durations.sum_ms / 1000)

    def flags(self, run: str, *, seeded: bool, drained: bool, lost: bool) -> None:
        self.seeded.add_metric([run], int(seeded))
        self.drained.add_metric([run], int(drained))
        self.lost.add_metric([run], int(lost))

    def __iter__(self) -> Iterator[Metric]:
        """The families that have samples."""
        for family in vars(self).values():
            if family.samples:
                yield family


class RunsCollector:
    """A prometheus_client collector: collect() reads Redis at each scrape (one at a time)."""

    def __init__(self, settings: RedisSettings, runs: Sequence[str], log: EventLog) -> None:
        self.settings = settings
        self.runs = tuple(runs)  # empty: every run found on the Redis
        self.log = log
        self.lock = threading.Lock()
        self.client: Client | None = None
        self.queues: dict[str, RunQueue] = {}
        self.seen: dict[str, str] = {}  # run seen seeded -> identity of the server it was on
        self.lost: set[str] = set()
        self.refused: set[str] = set()  # runs of another storage format, logged once
        self.down: str | None = None  # why the last scrape could not read Redis
        # A mistake no retry mends (the URL's database does not exist): the exporter stops.
        self.fatal: ConfigError | None = None

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            try:
                families = self._scrape()
            except _UNREADABLE as exc:
                families = None
                self.fatal = fatal_error(exc, self.settings)
                if self.fatal is None:
                    self._went_down(exc)
        up = 0 if families is None else 1
        yield GaugeMetricFamily(
            "wq_redis_up", "1 if the exporter could read Redis on this scrape, else 0.", up
        )
        if families is not None:
            yield from families

    def probe(self) -> None:
        """Reads Redis once, as a scrape does."""
        for _ in self.collect():
            pass

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def _scrape(self) -> Families:
        client = self._client()
        identity = server_identity(client)
        found = set(self.runs) if self.runs else find_runs(client)
        families = Families()
        for run in sorted(found | set(self.seen) | self.lost):
            try:
                status, durations = self._queue(client, run).reading.metrics()
            except RunFormatError as exc:
                if run not in self.refused:
                    self.refused.add(run)
                    self.log.warning("run.skipped", run=run, reason=str(exc))
                continue
            except RunLost:  # a sharded run with a shard's keys gone: lost, the others shown
                families.flags(run, seeded=False, drained=False, lost=True)
                continue
            if status.seeded:
                self.seen[run] = identity
                self.lost.discard(run)
                families.add_run(status, durations)
            elif run in self.lost or (run in self.seen and self._lost(run, identity)):
                families.flags(run, seeded=False, drained=False, lost=True)
            elif run in self.runs:
                families.flags(run, seeded=False, drained=False, lost=False)
        if self.down is not None:
            self.log.info("redis.up", url=self.settings.display)
            self.down = None
        return families

    def _lost(self, run: str, identity: str) -> bool:
        """A run seen seeded has no seeded marker now: lost, or gone on purpose."""
        restarted = self.seen.pop(run) != identity
        if restarted or self.queues[run].reading.has_keys():
            self.lost.add(run)
            self.log.warning(
                "run.lost",
                run=run,
                cause="Redis restarted" if restarted else "some of its keys are gone",
            )
            return True
        self.queues.pop(run, None)  # purged, or expired: forgotten
        return False

    def _client(self) -> Client:
        # Made at a scrape rather than at start: a cluster client asks a node for the cluster's
        # layout as it is made, and Redis may be down when the exporter starts.
        if self.client is None:
            self.client = self.settings.client(
                timeout_s=CALL_TIMEOUT_S,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                retry=False,
                name=CLIENT_NAME,
            )
        return self.client

    def _queue(self, client: Client, run: str) -> RunQueue:
        queue = self.queues.get(run)
        if queue is None:
            queue = RunQueue(client, run, Retrying(self.settings, budget=0))
            self.queues[run] = queue
        return queue

    def _went_down(self, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        if reason != self.down:
            self.log.warning("redis.down", url=self.settings.display, error=reason)
        self.down = reason
        # The next scrape starts afresh (a cluster client may hold a layout that changed).
        self.close()
        self.client = None
        self.queues.clear()


def fatal_error(exc: BaseException, settings: RedisSettings) -> ConfigError | None:
    """The mistake `exc` shows, if no retry can mend it."""
    if isinstance(exc, ConfigError):
        return exc
    try:
        raise_if_no_such_database(exc, settings)
    except ConfigError as fatal:
        return fatal
    return None


def serve(
    settings: RedisSettings,
    address: str,
    port: int,
    runs: Sequence[str],
    log: EventLog,
    ui: bool = False,
) -> int:
    """Serve /metrics (and with `ui` the web page, wq.read.web) until SIGTERM or SIGINT;
    returns 0."""
    collector = RunsCollector(settings, runs, log)
    registry = CollectorRegistry()
    registry.register(collector)
    page = PageData(settings, tuple(runs)) if ui else None
    try:
        server = listen(address, port, WebApp(make_wsgi_app(registry), page))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        # One read now, so that a mistake found by connecting stops the exporter at once (an
        # outage is a warning and wq_redis_up 0, as at any scrape). A scrape may find one later.
        collector.probe()
        if collector.fatal is None:
            host = f"[{address}]" if ":" in address else address
            base = f"http://{host}:{server.server_port}"
            log.info(
                "exporter.start",
                metrics=f"{base}/metrics",
                **({"ui": f"{base}/"} if ui else {}),
                redis=settings.display,
                runs=",".join(runs) or "all",
            )
        while collector.fatal is None and not stop.wait(1.0):
            pass
    finally:
        server.shutdown()
        server.server_close()
        collector.close()
        if page is not None:
            page.close()
    if collector.fatal is not None:
        raise collector.fatal
    log.info("exporter.stopped")
    return 0
