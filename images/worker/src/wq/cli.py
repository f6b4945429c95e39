"""The `wq` command line. It only parses options and calls the modules that do the work."""

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TypeVar

import click
import redis

from wq import __version__
from wq.base.errors import ConfigError, RunLost, WqError
from wq.base.logs import EventLog
from wq.base.options import (
    ConnectionConfig,
    WorkerConfig,
    click_option,
    click_options,
    command_from_env,
    count,
    pop_config,
    seconds,
)
from wq.localrun import run_locally
from wq.read import report as reports
from wq.read.ledger import DEAD, STATES, account, iter_records
from wq.read.watch import watch_status
from wq.scale.autoscale import AutoscaleConfig, Autoscaler
from wq.seed import open_runs
from wq.seed.seeder import ItemsSource, digest_of, seed_from
from wq.store.connection import RedisSettings
from wq.store.keys import check_run_id
from wq.store.queue import RunQueue, open_queue
from wq.work.handlers import build_handler, split_command_line
from wq.work.worker import Worker

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = (
    "Settings can also be given as the WQ_* environment variable shown beside them; "
    "one-off flags (--json, --watch, --check, --yes) cannot."
)

connection_options = click_options(ConnectionConfig)
worker_options = click_options(WorkerConfig)


def env_option(*decls: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, envvar=env, show_envvar=True, **kwargs)


class RunIds(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """Run ids: repeated on the command line, separated by commas in the variable."""

    name = "run"

    def split_envvar_value(self, rv: str) -> list[str]:
        return [part.strip() for part in rv.split(",") if part.strip()]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return check_run_id(str(value).strip())
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


def items_options(func: F) -> F:
    return click.argument("items", nargs=-1)(click_options(ItemsSource)(func))


def open_run(conn: dict[str, Any]) -> tuple[RunQueue, EventLog]:
    """The run's queue and a log, from the connection settings among a command's arguments."""
    config = pop_config(ConnectionConfig, conn)
    log = EventLog(level=config.log_level, fmt=config.log_format)
    return open_queue(config, log), log


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wq")
def cli() -> None:
    """wq: fan a list of work items out to parallel workers through Redis, and know that
    every item was processed.

    \b
    A first taste on one machine (starts its own redis-server):
      wq run --workers 3 apple banana cherry
    In a cluster the Helm chart runs `wq seed` once and `wq work` in N pods.
    """


@cli.command(epilog=EPILOG)
@connection_options
@items_options
@click.option(
    "--open",
    "keep_open",
    is_flag=True,
    help="Seed an open run: `wq seed --append` adds items while workers process it, until "
    "`wq seal`. Workers wait on a drained open run. The items are optional.",
)
@click.option(
    "--append",
    is_flag=True,
    help="Add the items to an open run, a chunk at a time, each chunk seen by workers whole; "
    "a run not seeded yet is seeded open first. Not idempotent: a retry appends again.",
)
@click.option(
    "--progressive",
    is_flag=True,
    envvar="WQ_SEED_PROGRESSIVE",
    show_envvar=True,
    help="Commit the items chunk by chunk as they are read, to a run that stays open until the "
    "source ends, then seal it: workers start on the first items while the rest is read. A "
    "retry resumes after the items already in, so each goes in once.",
)
def seed(keep_open: bool, append: bool, progressive: bool, **opts: Any) -> int:
    """Put a run's items into Redis, once.

    Items come from exactly one of: ITEMS on the command line, --items-file, --items-url,
    --items-from, --list, --range or --adopt-list. Seeding is atomic and idempotent: running
    it again for the same run with the same items does nothing, so a retried seeding Job
    never seeds twice; with other items it is an error (exit 2). A source that fails half-way
    seeds nothing. The run records a digest of its items (see `wq status`). With
    --progressive, workers see the items as they are read instead, a chunk at a time.

    \b
    Examples:
      wq seed --run r1 --items-url s3://bucket/items.jsonl
      wq seed --run r1 --items-url s3://bucket/10M-items.txt.gz --progressive
      wq seed --run r1 --list 'gs://bucket/photos/*.jpg'
      generate-items | wq seed --run r1 --items-from -
      wq seed --run r2 --open; wq seed --run r2 --append a b; wq seal --run r2
    """
    queue, log = open_run(opts)
    source = ItemsSource(**opts)
    if progressive:
        return progressive_seed(queue, source, log, keep_open or append)
    if append:
        source.check()
        if source.item_range or source.adopt_list:
            raise ConfigError("--append takes listed items, not --range or --adopt-list")
        added = open_runs.append(queue, source.batches())
        log.info(
            "append.done",
            run=queue.run,
            appended=added.appended,
            total=added.total,
            digest=added.digest,
        )
        return 0
    result = seed_from(queue, source, open_run=keep_open)
    outcome = "seeded" if result.seeded_now else "already_seeded"
    log.info(
        "seed.done",
        run=queue.run,
        outcome=outcome,
        total=result.total,
        **({"open": True} if keep_open else {"digest": result.digest}),
    )
    return 0


def progressive_seed(queue: RunQueue, source: ItemsSource, log: EventLog, other: bool) -> int:
    """`wq seed --progressive`."""
    source.check()
    if other or source.item_range or source.adopt_list:
        raise ConfigError(
            "--progressive takes listed items (--items-url, --items-from, --list, --items-file "
            "or ITEMS), without --open, --append, --range or --adopt-list"
        )
    result = open_runs.seed_progressively(queue, source.batches())
    log.info(
        "seed.done",
        run=queue.run,
        outcome="seeded" if result.appended or result.seal.sealed_now else "already_seeded",
        total=result.seal.total,
        appended=result.appended,
        resumed_after=result.resumed_after,
        digest=result.seal.digest,
    )
    return 0


@cli.command(epilog=EPILOG)
@connection_options
def seal(**conn: Any) -> int:
    """Close an open run to appends: once its items are all processed its workers exit 0.

    Records the digest of all its items (read back from Redis), shown by `wq status`. Sealing
    a sealed run changes nothing.
    """
    queue, _ = open_run(conn)
    result = open_runs.seal(queue)
    outcome = "sealed" if result.sealed_now else "was sealed already"
    click.echo(f"run {queue.run} {outcome}: {result.total} item(s), digest {result.digest or '-'}")
    return 0


@cli.command(
    epilog=EPILOG + " The command for --handler command comes after `--`, or as WQ_COMMAND "
    'holding a JSON list, e.g. \'["convert", "{{ item.src }}", "{{ item.dst }}"]\'.'
)
@connection_options
@worker_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def work(command: tuple[str, ...], **opts: Any) -> int:
    """Process items until the run is drained.

    With --shell every value a template inserts is quoted as one shell word: write tags bare,
    never inside quotes; shell code reads the raw item from "$WQ_ITEM".

    Exits 0 only when nothing is pending and nothing is in flight anywhere, and the run is
    sealed; while other workers hold the last items it waits, reclaiming their leases as they
    expire, and on an open run it waits for more items or the seal. Exit codes:
    0 drained, 1 Redis unreachable or full or the run never seeded, 2 bad configuration,
    3 drained with dead items under --fail-on-dead, 4 the run was lost (seeded, then its keys
    were gone), 143 stopped by SIGTERM (its items were handed back). With 0, 3, 4 or 143 it logs
    a summary (event worker.summary: items processed, failed attempts, mean item time) and
    writes it as one line to --termination-log, which `kubectl describe pod` shows.

    \b
    Examples:
      wq work --run r1 --handler demo --demo-sleep 0.1
      wq work --run r1 --handler command -- convert {{ item.src }} {{ item.dst }}
      wq work --run r1 --handler command --shell -- 'gzip -c {{ item }} > {{ item }}.gz'
      wq work --run r1 --handler command --shell -- 'echo "$WQ_ITEM" | wc -c'
    """
    queue, log = open_run(opts)
    config = pop_config(WorkerConfig, {**opts, "command": command or command_from_env(os.environ)})
    worker = Worker(queue, build_handler(config), config, log)
    worker.install_signal_handlers()
    return worker.run()


@cli.command(epilog=EPILOG)
@connection_options
@click_options(AutoscaleConfig)
@click_option(
    WorkerConfig,
    "concurrency",
    help="Items one worker pod processes at once (the workers' --concurrency): the Job keeps "
    "a pod per this many items in flight.",
)
def autoscale(concurrency: int, **opts: Any) -> int:
    """Size a run's worker Job to its work, until the run is drained.

    Every --interval seconds it reads the run's counts and the Job, and sets the Job's
    parallelism: up at once while the work left outgrows what the pods finish within
    --target-seconds (or one pod per --items-per-worker items left); down only toward the
    pods that hold the items in flight, once the smaller size has been wanted for --cooldown
    seconds; always within --min and --max. Each change is logged with its reason and
    recorded as an Event on the Job; `wq status` shows the last decision.

    Nothing depends on it: if it stops, the Job keeps its last parallelism and completes.
    It needs to get and patch the Job and create Events: in a pod, through its service
    account (the chart's worker.autoscale sets that up); elsewhere, through the kubeconfig.

    Exit codes: 0 the run is drained, or the Job finished or was deleted; 1 Redis
    unreachable; 2 bad configuration, or the Job not readable for 5 minutes; 4 the run was
    lost; 143 stopped by SIGTERM.

    \b
    Example:
      wq autoscale --run r1 --job r1-worker --min 1 --max 20 --target-seconds 900
    """
    from wq.scale import kube  # the kubernetes client: only this command needs it

    queue, log = open_run(opts)
    config = pop_config(AutoscaleConfig, opts)
    policy = config.policy(concurrency)
    namespace = config.namespace or kube.default_namespace()
    kube.load_config()
    job = kube.KubeJob(config.job, namespace, instance=socket.gethostname())
    scaler = Autoscaler(queue, job, config, policy, log)
    scaler.install_signal_handlers()
    return scaler.run()


@cli.command(epilog=EPILOG)
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
@env_option(
    "--interval",
    env="WQ_WATCH_INTERVAL",
    type=seconds(0.1, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between updates with --watch.",
)
def status(
    as_json: bool, watch: bool, check: bool, expect_seeded: bool, interval: float, **conn: Any
) -> int:
    """Show a run's counts: total, pending, in flight, done, retried, dead, rate, ETA and the
    digest of its items (compare it with `wq digest` of the items file); when `wq autoscale`
    sizes its worker Job, the Job's parallelism, the one decided and why."""
    queue, _ = open_run(conn)
    current = queue.reading.status()
    if expect_seeded and not current.seeded:
        raise RunLost(queue.run)
    if watch:
        current = watch_status(queue, interval, sys.stderr)
    scaling = queue.reading.scaling()
    rows = scaling.rows() if scaling else []
    fields = {"autoscale": asdict(scaling)} if scaling else {}
    if not check:
        click.echo(current.to_json(**fields) if as_json else current.to_text(extra=rows))
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
        click.echo(current.to_json(check={"exact": exact, "summary": summary}, **fields))
    else:
        click.echo(current.to_text(extra=[*rows, ("check", summary)]))
    return 0 if exact and current.clean else 1


@cli.command(epilog=EPILOG)
@click.argument("items", nargs=-1)
@click_options(ItemsSource, skip=("adopt_list",))
def digest(**opts: Any) -> int:
    """Print the digest of items, as `wq seed` records it for a run.

    Computed here, without Redis. `wq status` shows the digest a run was seeded with: equal
    digests mean the run holds exactly these items, in this order.

    \b
    Examples:
      wq digest --items-file items.txt
      wq digest --items-file values.yaml    # the `items` of a chart values file
      wq digest --range 0:1000000
      wq digest --items-url s3://bucket/items.jsonl
    """
    click.echo(digest_of(ItemsSource(**opts)))
    return 0


@cli.command(epilog=EPILOG)
@connection_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dead(as_json: bool, **conn: Any) -> int:
    """List dead-lettered items with their last error (`wq report --state dead`, shorter)."""
    queue, _ = open_run(conn)
    n = 0
    for d in iter_records(queue, states=(DEAD,)):
        n += 1
        if as_json:
            record = {"position": d.position, "item": json.loads(d.item), "error": d.error}
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            click.echo(f"{d.position}\t{d.item}\t{d.error}")
    if not as_json:
        click.echo(f"{n} dead item(s) in run {queue.run}", err=True)
    return 0


@cli.command(epilog=EPILOG)
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
    queue, _ = open_run(conn)
    records = iter_records(queue, states=states or STATES)
    if output is None:
        reports.write(records, fmt, sys.stdout)
        return 0
    with reports.replaced_when_complete(output) as f:
        n = reports.write(records, fmt, f)
    click.echo(f"wrote {n} record(s) of run {queue.run} to {output}", err=True)
    return 0


@cli.command("retry-dead", epilog=EPILOG)
@connection_options
def retry_dead(**conn: Any) -> int:
    """Give every dead item a fresh set of attempts (run workers again to process them)."""
    queue, _ = open_run(conn)
    click.echo(f"requeued {queue.admin.retry_dead()} dead item(s) in run {queue.run}")
    return 0


@cli.command(epilog=EPILOG)
@connection_options
@click_option(
    WorkerConfig, "max_attempts", help="Items whose attempts are used up go to the dead list."
)
def reap(max_attempts: int, **conn: Any) -> int:
    """Reclaim expired leases now (workers also do this on their own)."""
    queue, _ = open_run(conn)
    reaped = queue.leases.reap_all(max_attempts)
    click.echo(f"requeued {reaped.requeued}, dead-lettered {reaped.dead} in run {queue.run}")
    return 0


@cli.command(epilog=EPILOG)
@connection_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(yes: bool, **conn: Any) -> int:
    """Delete every key of a run (its items, counts and dead letters)."""
    queue, _ = open_run(conn)
    if not yes and not click.confirm(f"Delete all keys of run {queue.run}?"):
        return 1
    click.echo(f"deleted {queue.admin.purge()} key(s) of run {queue.run}")
    return 0


@cli.command(epilog=EPILOG)
@click_options(ConnectionConfig, skip=("run_id", "redis_wait"))
@env_option(
    "--port",
    env="WQ_EXPORTER_PORT",
    type=count(0, 65535),
    default=9899,
    show_default=True,
    help="TCP port to serve on (0: any free port; the start line names it).",
)
@env_option(
    "--address",
    env="WQ_EXPORTER_ADDRESS",
    default="0.0.0.0",
    show_default=True,
    help="Address to listen on: 0.0.0.0 every IPv4 interface, :: every interface, "
    "127.0.0.1 this machine only.",
)
@env_option(
    "--run",
    "runs",
    env="WQ_EXPORTER_RUNS",
    multiple=True,
    type=RunIds(),
    help="Export this run only; repeat for several (in the variable: comma-separated). "
    "Default: every run on the Redis, found anew at each scrape. WQ_RUN, the one run of the "
    "other commands, is not read.",
)
def exporter(port: int, address: str, runs: tuple[str, ...], **conn: Any) -> int:
    """Serve Prometheus metrics of every run on a Redis at http://ADDRESS:PORT/metrics.

    Each scrape reads Redis afresh, in a few short calls (one per run, whatever its size):
    items by state, done, executions, retries, late results, rate, and a histogram of item
    durations, each labelled with the run; and wq_redis_up. While Redis cannot be read,
    wq_redis_up is 0 and no run is shown: an outage never looks like an empty queue. A run
    whose keys are gone because Redis restarted, or evicted some of them, stays in the output
    as lost (wq_run_lost 1); a purged or expired run leaves it. The README's Monitoring
    section lists every metric. SIGTERM stops it (exit 0).

    \b
    Examples:
      wq exporter --redis-url redis://redis:6379/0
      wq exporter --port 9899 --run r1 --run r2
      curl -s http://localhost:9899/metrics | grep '^wq_'
    """
    # Imported here: prometheus_client would add 30 ms to the start of every other command.
    from wq.read.exporter import serve

    config = pop_config(ConnectionConfig, conn)
    log = EventLog(level=config.log_level, fmt=config.log_format)
    return serve(RedisSettings.of(config), address, port, runs, log)


@cli.command("run", epilog=EPILOG)
@click_option(
    ConnectionConfig,
    "redis_url",
    default="",
    show_default=False,
    help="Use this Redis instead of starting a private redis-server.",
)
@click_option(ConnectionConfig, "redis_password")
@click_option(ConnectionConfig, "redis_ca_cert")
@click_option(ConnectionConfig, "run_id", required=False, help="Run id (default: local-TIMESTAMP).")
@env_option(
    "--workers",
    env="WQ_WORKERS",
    type=count(1, 64),
    default=2,
    show_default=True,
    help="Worker processes to start.",
)
@click.option(
    "--command",
    "command_line",
    default=None,
    help="Command handler's command line, split like a shell would, each {{ ... }} kept "
    "whole (e.g. 'curl -fsS {{ item }}').",
)
@items_options
@click_options(WorkerConfig, skip=("worker_id", "seed_wait_s", "termination_log"))
def run_local(workers: int, command_line: str | None, **opts: Any) -> int:
    """Seed and process a run on this machine, with a live progress bar.

    \b
    Examples:
      wq run --workers 3 apple banana cherry
      wq run --workers 4 --range 0:10000 --handler demo --demo-sleep 0
      wq run --items-file urls.txt --handler command --command 'curl -fsS {{ item }}'
    """
    connection = ConnectionConfig(
        redis_url=opts.pop("redis_url"),
        redis_password=opts.pop("redis_password"),
        redis_ca_cert=opts.pop("redis_ca_cert"),
        redis_wait=30.0,
        run_id=opts.pop("run_id") or time.strftime("local-%Y%m%d-%H%M%S"),
        log_level="warning",
    )
    config = pop_config(WorkerConfig, opts)
    if command_line:
        config = replace(config, handler="command", command=split_command_line(command_line))
    return run_locally(connection, config, ItemsSource(**opts), workers)


def main() -> None:
    """Console entry point: one-line errors, exit 2 for bad input, no tracebacks."""
    try:
        code = cli.main(prog_name="wq", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("wq: aborted", err=True)
        code = 130
    except click.ClickException as exc:
        click.echo(f"wq: error: {exc.format_message()} (see --help)", err=True)
        code = exc.exit_code
    except WqError as exc:
        click.echo(f"wq: error: {exc}", err=True)
        code = exc.exit_code
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        click.echo(f"wq: error: Redis answered with an error: {exc}", err=True)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
