"""What the web page (`wq exporter --ui`) shows, read from Redis on each request: the runs, a
run's status (the very object of `wq status --json`), its durations histogram, its items/s
timeline, its dead items and a search of its report. Nothing here changes a run.

Calls are tried once, with short timeouts, on a client of the page's own: a Redis outage
raises (the page shows it as such, never as no runs), and a slow page never holds a scrape.
"""

import threading
import time
from typing import Any

from wq.base.errors import ConfigError, RunLost
from wq.base.run_id import check_run_id
from wq.base.status import RunStatus
from wq.read.ledger import DEAD, finish_times, iter_records
from wq.read.report import as_dict
from wq.read.status_view import status_dict
from wq.read.timeline import Timeline, timeline
from wq.store import layout
from wq.store.connection import Client, RedisSettings, Retrying
from wq.store.queue import RunQueue
from wq.store.survey import find_runs

CONNECT_TIMEOUT_S = 1.0
CALL_TIMEOUT_S = 5.0  # a call reads one window of a run (wq.store.reading.WINDOW) at most
CLIENT_NAME = "wq-exporter-ui"  # in CLIENT LIST and SLOWLOG, apart from the scrapes'
DEAD_SHOWN = 100  # dead items listed on the page, at most (the count says how many in all)
SEARCH_MATCHES = 50  # matches a search returns, at most
SEARCH_BUDGET_S = 5.0  # a search of a big run stops after this long and says how far it read
# A running run's timeline is read again at most this often, or ten times as seldom as it
# took to read (the whole ledger, a page at a time); a finished one once.
TIMELINE_FRESH_S = 2.0


class PageData:
    """The page's reads on one Redis (safe to call from the server's threads)."""

    def __init__(self, settings: RedisSettings, runs: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.runs = runs  # empty: every run found on the Redis
        self.lock = threading.Lock()
        self._client: Client | None = None
        # run -> (what the run's counts were, the timeline, when read, seconds it took)
        self._timelines: dict[str, tuple[tuple[int, ...], Timeline, float, float]] = {}

    def client(self) -> Client:
        with self.lock:
            if self._client is None:
                self._client = self.settings.client(
                    timeout_s=CALL_TIMEOUT_S,
                    connect_timeout_s=CONNECT_TIMEOUT_S,
                    retry=False,
                    name=CLIENT_NAME,
                )
            return self._client

    def close(self) -> None:
        with self.lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def queue(self, run: str) -> RunQueue:
        """The run's queue; ConfigError if `run` is no run id (or not one of --run)."""
        check_run_id(run)
        if self.runs and run not in self.runs:
            raise ConfigError(f"run {run!r} is not one this exporter serves")
        return RunQueue(self.client(), run, Retrying(self.settings, budget=0))

    def list_runs(self) -> list[dict[str, Any]]:
        """Every run (or those of --run), sorted, each as `wq status --json` shows it."""
        names = sorted(self.runs or find_runs(self.client()))
        return [self._listed(run) for run in names]

    def _listed(self, run: str) -> dict[str, Any]:
        try:
            return status_dict(self.queue(run))
        except RunLost as exc:  # a sharded run with a shard's keys gone: the others are shown
            return {"run": run, "state": "lost", "error": str(exc)}

    def status(self, run: str) -> dict[str, Any]:
        return status_dict(self.queue(run))

    def histogram(self, run: str) -> dict[str, Any]:
        """Attempts by duration: counts per bucket, each up to its bound (null: longer)."""
        durations = self.queue(run).reading.metrics().durations
        return {
            "bounds_s": [*layout.DURATION_BUCKETS_S, None],
            "counts": durations.counts,
            "sum_s": durations.sum_ms / 1000,
        }

    def timeline(self, run: str) -> dict[str, Any]:
        queue = self.queue(run)
        status = queue.reading.status()
        # Finish times change only as these do: the same counts, the same timeline.
        key = (status.done, status.dead, status.executions, int(status.drained))
        cached = self._timelines.get(run)
        if cached is not None:
            was, line, at, cost = cached
            fresh = max(TIMELINE_FRESH_S, 10 * cost)
            if was == key or (not status.drained and time.monotonic() - at < fresh):
                return line.as_dict()
        started = time.monotonic()
        line = timeline(finish_times(queue))
        self._timelines[run] = (key, line, time.monotonic(), time.monotonic() - started)
        return line.as_dict()

    def dead(self, run: str) -> dict[str, Any]:
        """The first DEAD_SHOWN dead items with their errors, and how many there are."""
        queue = self.queue(run)
        status = queue.reading.status()
        shown: list[dict[str, Any]] = []
        if status.seeded and status.dead:
            for record in iter_records(queue, states=(DEAD,)):
                shown.append(as_dict(record))
                if len(shown) == DEAD_SHOWN:
                    break
        return {"count": status.dead, "items": shown}

    def search(self, run: str, query: str) -> dict[str, Any]:
        """Records whose item's text holds `query` (case aside), or whose position it is."""
        queue = self.queue(run)
        status = queue.reading.status()
        needle = query.strip()
        if not status.seeded or not needle:
            return {"matches": [], "searched": 0, "complete": True}
        position = int(needle) if needle.isdigit() else None
        lowered = needle.lower()
        deadline = time.monotonic() + SEARCH_BUDGET_S
        searched = 0

        def where(p: int, item: str) -> bool:
            nonlocal searched
            if time.monotonic() > deadline:
                raise _OutOfTime
            searched = p + 1
            return p == position or lowered in item.lower()

        matches: list[dict[str, Any]] = []
        try:
            for record in iter_records(queue, where=where):
                matches.append(as_dict(record))
                if len(matches) == SEARCH_MATCHES:
                    break
        except _OutOfTime:
            pass
        complete = searched >= status.total and len(matches) < SEARCH_MATCHES
        return {"matches": matches, "searched": searched, "complete": complete}

    def report_status(self, run: str) -> tuple[RunQueue, RunStatus]:
        """The run's queue and status, before its report is streamed."""
        queue = self.queue(run)
        return queue, queue.reading.status()


class _OutOfTime(Exception):
    """A search ran past SEARCH_BUDGET_S."""
