"""A run's counts, and how they are shown."""

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def is_drained(seeded: bool, pending: int, in_flight: int, open_run: bool = False) -> bool:
    """Nothing pending and nothing in flight in a seeded run that takes no more items (not
    open): every item is done or dead, and none will come."""
    return seeded and not open_run and pending == 0 and in_flight == 0


@dataclass(frozen=True)
class RunStatus:
    run: str
    seeded: bool
    total: int
    pending: int
    in_flight: int
    done: int
    dead: int
    retried: int
    released: int
    executions: int
    stale: int
    elapsed_s: float | None  # since the first lease; a drained run's: to its last item
    rate: float | None  # items done per second over elapsed_s
    digest: str | None = None  # of the run's items, fixed at seeding (wq.store.layout)
    expires_in_s: float | None = None  # when the keys of a drained run expire; None: never
    open: bool = False  # takes appends until `wq seal`: never drained while open
    # How long attempts took: half of them, and 99%, took at most this long (the durations
    # histogram's bucket bounds, wq.store.layout); None: none timed yet.
    item_p50_s: float | None = None
    item_p99_s: float | None = None
    shards: int = 1  # sub-runs the run is spread over (`wq seed --shards`)

    @property
    def drained(self) -> bool:
        return is_drained(self.seeded, self.pending, self.in_flight, self.open)

    @property
    def clean(self) -> bool:
        return self.drained and self.dead == 0

    @property
    def eta_s(self) -> float | None:
        if not self.rate or self.drained:
            return None
        return (self.pending + self.in_flight) / self.rate

    @property
    def state(self) -> str:
        if not self.seeded:
            return "not seeded"
        if self.open:
            if self.pending == 0 and self.in_flight == 0:
                return "open, waiting for items or the seal"
            return "open, running" if self.executions else "open, waiting for workers"
        if self.drained:
            return "drained" if self.dead == 0 else "drained with dead items"
        return "running" if self.executions else "waiting for workers"

    def to_json(self, **extra: Any) -> str:
        return json.dumps(self.as_dict(**extra), sort_keys=True)

    def as_dict(self, **extra: Any) -> dict[str, Any]:
        """The fields, and what they imply (drained, state, eta_s): `wq status --json`."""
        data = asdict(self)
        data.update(drained=self.drained, state=self.state, eta_s=self.eta_s, **extra)
        return data

    def to_text(self, extra: Sequence[tuple[str, str]] = ()) -> str:
        """Aligned rows of the counts, then `extra` rows."""
        rows = [
            ("run", self.run),
            ("state", self.state),
            (
                "items",
                "open (wq seed --append adds, wq seal closes)"
                if self.open
                else "sealed"
                if self.seeded
                else "-",
            ),
            *([("shards", str(self.shards))] if self.shards > 1 else []),
            ("total", str(self.total)),
            ("pending", str(self.pending)),
            ("in flight", str(self.in_flight)),
            ("done", str(self.done)),
            ("dead", str(self.dead)),
            ("retried", str(self.retried)),
            ("time", self._time()),
            ("rate", f"{self.rate:.1f} items/s" if self.rate else "-"),
            ("item time", self._item_time()),
            ("eta", format_duration(self.eta_s)),
            ("digest", self.digest or ("- (computed at the seal)" if self.open else "-")),
        ]
        if self.expires_in_s is not None:
            rows.append(("expires", f"in {format_duration(self.expires_in_s)}"))
        rows.extend(extra)
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def _time(self) -> str:
        if self.elapsed_s is None:
            return "-"
        took = format_duration(self.elapsed_s)
        return f"{took} (first lease to last item)" if self.drained else f"{took} so far"

    def _item_time(self) -> str:
        if self.item_p50_s is None:
            return "-"
        if self.item_p99_s is None:  # past the durations histogram's last bound
            return f"p50 <= {self.item_p50_s * 1000:g} ms, p99 longer than the last bucket"
        return f"p50 <= {self.item_p50_s * 1000:g} ms, p99 <= {self.item_p99_s * 1000:g} ms"

    def progress_line(self, rate: float | None, width: int = 30) -> str:
        """One line for a live view: a bar and the counts, with a rate measured by the caller."""
        finished = self.done + self.dead
        fraction = finished / self.total if self.total else 1.0
        filled = round(fraction * width)
        bar = "#" * filled + "." * (width - filled)
        eta = (self.pending + self.in_flight) / rate if rate else None
        return (
            f"[{bar}] {finished}/{self.total} {fraction:6.1%}  pending {self.pending}  "
            f"in flight {self.in_flight}  dead {self.dead}  "
            f"{(rate or 0.0):.1f}/s  eta {format_duration(eta)}"
        )


@dataclass(frozen=True)
class Scaling:
    """The last decision of `wq autoscale` on the run's worker Job (layout: scaling hash)."""

    job: str
    current: int  # the Job's parallelism when the decision was made
    target: int  # the parallelism decided
    reason: str
    at_ms: int  # Redis time of the decision

    def rows(self) -> list[tuple[str, str]]:
        """Rows for RunStatus.to_text."""
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.at_ms / 1000))
        size = (
            str(self.current) if self.target == self.current else f"{self.current} -> {self.target}"
        )
        return [
            ("parallelism", f"{size} (autoscaled job {self.job}, decided {at})"),
            ("scaling", self.reason),
        ]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
