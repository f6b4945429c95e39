"""`wq status`: a run's counts once, live with --watch, or with the proof that every position
is accounted for (--check); with the autoscaler's last decision when one sizes the run."""

from dataclasses import asdict
from typing import IO, Any, TextIO

from wq.base.errors import RunLost
from wq.base.status import Scaling
from wq.read.ledger import account
from wq.read.watch import watch_status
from wq.store.queue import RunQueue


def show_status(
    queue: RunQueue,
    out: IO[str],
    progress: TextIO,
    as_json: bool = False,
    watch: bool = False,
    check: bool = False,
    expect_seeded: bool = False,
    interval_s: float = 2.0,
) -> int:
    """Print the status to `out` (the live bar of --watch to `progress`); the exit code: 0,
    or with --check 0 only if the run is drained, clean and accounted for, else 1."""
    current = queue.reading.status()
    if expect_seeded and not current.seeded:
        raise RunLost(queue.run)
    if watch:
        current = watch_status(queue, interval_s, progress)
    scaling = queue.reading.scaling()
    rows = scaling.rows() if scaling else []
    fields = json_extra(scaling)
    if not check:
        print(current.to_json(**fields) if as_json else current.to_text(extra=rows), file=out)
        return 0
    if current.drained:
        accounting = account(queue)
        exact, summary = accounting.exact, accounting.summary()
    else:
        exact = False
        summary = (
            f"NOT accounted for: the run is {current.state} ({current.pending} pending, "
            f"{current.in_flight} in flight)"
        )
    if as_json:
        print(current.to_json(check={"exact": exact, "summary": summary}, **fields), file=out)
    else:
        print(current.to_text(extra=[*rows, ("check", summary)]), file=out)
    return 0 if exact and current.clean else 1


def json_extra(scaling: Scaling | None) -> dict[str, Any]:
    """What `wq status --json` adds to the counts: the autoscaler's last decision, if any."""
    return {"autoscale": asdict(scaling)} if scaling else {}


def status_dict(queue: RunQueue) -> dict[str, Any]:
    """The object `wq status --json` prints (the web page's view of a run)."""
    return queue.reading.status().as_dict(**json_extra(queue.reading.scaling()))
