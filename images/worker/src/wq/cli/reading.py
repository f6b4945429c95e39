"""`wq status`, `wq report`, `wq dead` and `wq exporter`: parse, then call the read layer."""

import sys
from pathlib import Path
from typing import Any

import click

from wq.base.command_options import ExporterOptions, StatusOptions
from wq.base.logs import EventLog
from wq.base.options import ConnectionConfig
from wq.base.settings import click_options, pop_config
from wq.cli.common import EPILOG, connect, connection_options
from wq.read import report as reports
from wq.read.ledger import STATES
from wq.read.status_view import show_status
from wq.store.connection import RedisSettings


@click.command(epilog=EPILOG)
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
@click.option("--watch", is_flag=True, help="Show a live progress bar until the run is drained.")
@click.option(
    "--check",
    is_flag=True,
    help="Verify that every position is accounted for exactly once (done + dead = total, none "
    "in two states; it reads the whole run, a window at a time). Exit 0 only if it is, and "
    "the run is drained with no dead items, else 1.",
)
@click.option(
    "--expect-seeded",
    is_flag=True,
    help="The run was seeded (its seeding Job ran): if it is not, it was lost; exit 4.",
)
@click_options(StatusOptions)
def status(
    as_json: bool, watch: bool, check: bool, expect_seeded: bool, interval_s: float, **conn: Any
) -> int:
    """Show a run's counts: total, pending, in flight, done, retried, dead, rate, ETA and the
    digest of its items (compare it with `wq digest` of the items file); when `wq autoscale`
    sizes its worker Job, the Job's parallelism, the one decided and why."""
    queue, _ = connect(conn)
    return show_status(
        queue, sys.stdout, sys.stderr, as_json, watch, check, expect_seeded, interval_s
    )


@click.command(epilog=EPILOG)
@connection_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dead(as_json: bool, **conn: Any) -> int:
    """List dead-lettered items with their last error (`wq report --state dead`, shorter)."""
    queue, _ = connect(conn)
    count_line = reports.write_dead(queue, as_json, sys.stdout)
    if count_line:
        click.echo(count_line, err=True)
    return 0


@click.command(epilog=EPILOG)
@connection_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(reports.FORMATS),
    default="jsonl",
    show_default=True,
    help="JSON Lines (values as they are) or CSV (string values as text, others as JSON; text "
    "that a spreadsheet would run as a formula gets a leading ').",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATES),
    help="Only items in this state; repeat for several (default: every item).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE, which appears once the report is complete (default: standard output).",
)
def report(fmt: str, states: tuple[str, ...], output: Path | None, **conn: Any) -> int:
    """Stream what happened to every item, in seed order: its state, attempts, the duration of
    the accepted attempt, the worker that finished it, when, the last error, the item and its
    output.

    Reads the run a window at a time, so it takes the same memory for any number of items.
    Pending and in-flight items are included (state pending or in_flight; an item is in
    flight if it was leased when the report started).

    \b
    Examples:
      wq report > report.jsonl
      wq report --format csv --state dead -o dead.csv
    """
    queue, _ = connect(conn)
    wrote = reports.write_run_report(queue, fmt, states, output, sys.stdout)
    if wrote:
        click.echo(wrote, err=True)
    return 0


@click.command(epilog=EPILOG)
@click_options(ConnectionConfig, skip=("run_id", "redis_wait"))
@click_options(ExporterOptions)
def exporter(port: int, address: str, runs: tuple[str, ...], ui: bool, **conn: Any) -> int:
    """Serve Prometheus metrics of every run on a Redis at http://ADDRESS:PORT/metrics.

    Each scrape reads Redis afresh, in a few short calls (one per run, whatever its size):
    items by state, done, executions, retries, late results, rate, and a histogram of item
    durations, each labelled with the run; and wq_redis_up. While Redis cannot be read,
    wq_redis_up is 0 and no run is shown: an outage never looks like an empty queue. A run
    whose keys are gone because Redis restarted, or evicted some of them, stays in the output
    as lost (wq_run_lost 1); a purged or expired run leaves it. The README's Monitoring
    section lists every metric. With --ui it also serves a read-only web page of the runs at
    http://ADDRESS:PORT/ (the README's Web page section). SIGTERM stops it (exit 0).

    \b
    Examples:
      wq exporter --redis-url redis://redis:6379/0
      wq exporter --port 9899 --run r1 --run r2
      wq exporter --ui --address 127.0.0.1
      curl -s http://localhost:9899/metrics | grep '^wq_'
    """
    # Imported here: prometheus_client would add 30 ms to the start of every other command.
    from wq.read.exporter import serve

    config = pop_config(ConnectionConfig, conn)
    log = EventLog(level=config.log_level, fmt=config.log_format)
    return serve(RedisSettings.of(config), address, port, runs, log, ui)
