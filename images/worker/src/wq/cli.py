"""The `wq` command line. It only parses options and calls the modules that do the work."""

import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import click
import redis

from wq import __version__
from wq.connection import RedisSettings, Retrying
from wq.errors import ConfigError, WqError
from wq.handlers import HANDLERS, Handler, make_handler, parse_command_env
from wq.item import encode
from wq.items_source import FORMATS, ItemRange, read_items_file
from wq.keys import RUN_ID_PATTERN
from wq.localrun import private_redis, start_workers, stop_workers
from wq.logs import LEVELS, EventLog
from wq.queue import RunQueue
from wq.seeder import SeedResult, adopt_list, seed_items, seed_range
from wq.watch import watch_status
from wq.worker import Worker, WorkerConfig

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = "Every option can also be set with the WQ_* environment variable shown beside it."


def _option(*names: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*names, envvar=env, show_envvar=True, **kwargs)


def connection_options(func: F) -> F:
    for decorator in reversed(
        [
            _option(
                "--redis-url",
                env="WQ_REDIS_URL",
                default="redis://localhost:6379/0",
                show_default=True,
                help="Redis to use: redis://[:PASSWORD@]HOST:PORT/DB, rediss:// for TLS, "
                "or unix:///path/to/socket.",
            ),
            _option(
                "--redis-password",
                env="WQ_REDIS_PASSWORD",
                default=None,
                help="Redis password; overrides one in the URL.",
            ),
            _option(
                "--redis-wait",
                env="WQ_REDIS_WAIT",
                type=click.FloatRange(min=0),
                default=60.0,
                show_default=True,
                help="Seconds to keep retrying while Redis is unreachable before failing.",
            ),
            _option(
                "--run",
                "run_id",
                env="WQ_RUN",
                required=True,
                help="Run id: letters, digits, '.', '_' or '-', at most 63 characters.",
            ),
            _option(
                "--log-level",
                env="WQ_LOG_LEVEL",
                type=click.Choice(list(LEVELS)),
                default="info",
                show_default=True,
                help="Least severe log event to print.",
            ),
            _option(
                "--log-format",
                env="WQ_LOG_FORMAT",
                type=click.Choice(["text", "json"]),
                default="text",
                show_default=True,
                help="Log lines as logfmt text or JSON.",
            ),
        ]
    ):
        func = decorator(func)
    return func


def items_options(func: F) -> F:
    for decorator in reversed(
        [
            click.argument("items", nargs=-1),
            _option(
                "--items-file",
                env="WQ_ITEMS_FILE",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Read items from a file: one per line, or a JSON/YAML list.",
            ),
            _option(
                "--format",
                "items_format",
                env="WQ_ITEMS_FORMAT",
                type=click.Choice(FORMATS),
                help="Format of --items-file (default: from the extension; .json, "
                ".yaml/.yml, else lines).",
            ),
            _option(
                "--range",
                "item_range",
                env="WQ_ITEM_RANGE",
                help="Items are the integers START:END[:STEP] (END excluded, as in Python's "
                "range); nothing is stored per item, so millions are cheap.",
            ),
            _option(
                "--adopt-list",
                env="WQ_ADOPT_LIST",
                help="Adopt a plain Redis list filled by hand (rpush KEY a b c) as the items.",
            ),
        ]
    ):
        func = decorator(func)
    return func


def handler_options(func: F) -> F:
    for decorator in reversed(
        [
            _option(
                "--handler",
                env="WQ_HANDLER",
                type=click.Choice(HANDLERS),
                default="demo",
                show_default=True,
                help="demo: print 'Working on ITEM' and sleep; command: run a command per item; "
                "python: call MODULE:FUNCTION with the item.",
            ),
            _option(
                "--demo-sleep",
                env="WQ_DEMO_SLEEP",
                type=click.FloatRange(min=0),
                default=1.0,
                show_default=True,
                help="Seconds the demo handler sleeps per item.",
            ),
            _option(
                "--python",
                "python_target",
                env="WQ_PYTHON",
                help="MODULE:FUNCTION for the python handler; called with the decoded item.",
            ),
            _option(
                "--shell/--no-shell",
                env="WQ_SHELL",
                default=False,
                show_default=True,
                help="Command handler: join the arguments and run them with /bin/sh -c.",
            ),
            _option(
                "--lease",
                "lease_s",
                env="WQ_LEASE",
                type=click.FloatRange(min=0.1),
                default=30.0,
                show_default=True,
                help="Lease length in seconds; renewed while the item runs, reclaimed by other "
                "workers if this one dies.",
            ),
            _option(
                "--item-timeout",
                "item_timeout_s",
                env="WQ_ITEM_TIMEOUT",
                type=click.FloatRange(min=0),
                default=0.0,
                show_default=True,
                help="Seconds one attempt at an item may take (0: no limit); a command's whole "
                "process group is killed.",
            ),
            _option(
                "--max-attempts",
                env="WQ_MAX_ATTEMPTS",
                type=click.IntRange(min=1),
                default=3,
                show_default=True,
                help="Attempts per item before it goes to the dead-letter list.",
            ),
            _option(
                "--concurrency",
                env="WQ_CONCURRENCY",
                type=click.IntRange(min=1, max=256),
                default=1,
                show_default=True,
                help="Items processed at once by one worker process.",
            ),
            _option(
                "--poll",
                "poll_s",
                env="WQ_POLL",
                type=click.FloatRange(min=0.01),
                default=1.0,
                show_default=True,
                help="Seconds between checks while other workers still hold the last items.",
            ),
            _option(
                "--fail-on-dead/--no-fail-on-dead",
                env="WQ_FAIL_ON_DEAD",
                default=False,
                show_default=True,
                help="Exit 3 instead of 0 when the run drains with dead items.",
            ),
        ]
    ):
        func = decorator(func)
    return func


class Context:
    """What every subcommand needs: settings, a log, and the run's queue."""

    def __init__(
        self,
        redis_url: str,
        redis_password: str | None,
        redis_wait: float,
        run_id: str,
        log_level: str,
        log_format: str,
    ) -> None:
        if not RUN_ID_PATTERN.match(run_id):
            raise ConfigError(
                f"run id {run_id!r} is not valid: use 1-63 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        self.settings = RedisSettings.from_url(redis_url, redis_password)
        self.log = EventLog(level=log_level, fmt=log_format)
        retrying = Retrying(
            self.settings,
            redis_wait,
            on_retry=lambda waited, exc: self.log.warning(
                "redis.retry", url=self.settings.display, waited_s=round(waited, 1), error=str(exc)
            ),
        )
        self.run_id = run_id
        self.queue = RunQueue(self.settings.client(), run_id, retrying)


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
def seed(
    items: tuple[str, ...],
    items_file: Path | None,
    items_format: str | None,
    item_range: str | None,
    adopt_list: str | None,
    **conn: Any,
) -> int:
    """Put a run's items into Redis, once.

    Items come from exactly one of: ITEMS on the command line, --items-file, --range or
    --adopt-list. Seeding is atomic and idempotent: running it again for the same run does
    nothing, so a retried seeding Job never seeds twice.
    """
    ctx = Context(**conn)
    result = _seed(ctx, items, items_file, items_format, item_range, adopt_list)
    verb = "seeded" if result.seeded_now else "already seeded"
    ctx.log.info("seed.done", run=ctx.run_id, outcome=verb.replace(" ", "_"), total=result.total)
    return 0


def _seed(
    ctx: Context,
    items: tuple[str, ...],
    items_file: Path | None,
    items_format: str | None,
    item_range: str | None,
    adopt: str | None,
) -> SeedResult:
    given = [
        n
        for n, v in (
            ("ITEMS", items),
            ("--items-file", items_file),
            ("--range", item_range),
            ("--adopt-list", adopt),
        )
        if v
    ]
    if len(given) != 1:
        raise ConfigError(
            "give items in exactly one way: ITEMS, --items-file, --range or --adopt-list"
            + (f" (got {' and '.join(given)})" if given else " (got none)")
        )
    if item_range:
        return seed_range(ctx.queue, ItemRange.parse(item_range))
    if adopt:
        return adopt_list(ctx.queue, adopt)
    if items_file:
        return seed_items(ctx.queue, read_items_file(items_file, items_format))
    return seed_items(ctx.queue, [encode(i) for i in items])


@cli.command(
    epilog=EPILOG + " The command for --handler command comes after `--`, or as WQ_COMMAND "
    'holding a JSON list, e.g. \'["convert", "{{ item.src }}", "{{ item.dst }}"]\'.'
)
@connection_options
@handler_options
@_option(
    "--seed-wait",
    "seed_wait_s",
    env="WQ_SEED_WAIT",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the run to be seeded before failing.",
)
@_option(
    "--worker-id",
    env="WQ_WORKER_ID",
    default=None,
    help="Name in logs and in the done record (default: HOSTNAME-PID).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def work(command: tuple[str, ...], seed_wait_s: float, worker_id: str | None, **opts: Any) -> int:
    """Process items until the run is drained.

    Exits 0 only when nothing is pending and nothing is in flight anywhere; while other
    workers hold the last items it waits, reclaiming their leases if they expire. Exit codes:
    0 drained, 1 Redis unreachable or never seeded, 2 bad configuration, 3 drained with dead
    items under --fail-on-dead, 143 stopped by SIGTERM (its items were handed back).

    \b
    Examples:
      wq work --run r1 --handler demo --demo-sleep 0.1
      wq work --run r1 --handler command -- convert {{ item.src }} {{ item.dst }}
      wq work --run r1 --handler command --shell -- 'echo "$WQ_ITEM" | wc -c'
    """
    conn = {k: opts.pop(k) for k in list(opts) if k in CONNECTION_KEYS}
    ctx = Context(**conn)
    worker = build_worker(ctx, command, seed_wait_s, worker_id, **opts)
    worker.install_signal_handlers()
    return worker.run()


CONNECTION_KEYS = ("redis_url", "redis_password", "redis_wait", "run_id", "log_level", "log_format")


def build_worker(
    ctx: Context,
    command: tuple[str, ...],
    seed_wait_s: float,
    worker_id: str | None,
    *,
    handler: str,
    demo_sleep: float,
    python_target: str | None,
    shell: bool,
    lease_s: float,
    item_timeout_s: float,
    max_attempts: int,
    concurrency: int,
    poll_s: float,
    fail_on_dead: bool,
) -> Worker:
    built = build_handler(
        command, handler, demo_sleep, python_target, shell, item_timeout_s, concurrency
    )
    config = WorkerConfig(
        worker_id=worker_id or f"{socket.gethostname()}-{os.getpid()}",
        lease_s=lease_s,
        item_timeout_s=item_timeout_s,
        max_attempts=max_attempts,
        concurrency=concurrency,
        seed_wait_s=seed_wait_s,
        poll_s=poll_s,
        fail_on_dead=fail_on_dead,
    )
    return Worker(ctx.queue, built, config, ctx.log)


def build_handler(
    command: tuple[str, ...],
    handler: str,
    demo_sleep: float,
    python_target: str | None,
    shell: bool,
    item_timeout_s: float,
    concurrency: int,
) -> Handler:
    """The handler the options describe; a ConfigError for options that do not fit together."""
    args = list(command)
    if not args and os.environ.get("WQ_COMMAND"):
        args = parse_command_env(os.environ["WQ_COMMAND"])
    if args and handler != "command":
        raise ConfigError(
            f"a command was given but the handler is {handler!r}; add --handler command"
        )
    built = make_handler(
        handler,
        demo_sleep_s=demo_sleep,
        python_target=python_target,
        command=args,
        shell=shell,
        item_timeout_s=item_timeout_s,
    )
    if item_timeout_s > 0 and concurrency > 1 and not built.enforces_own_timeout:
        raise ConfigError(
            f"--item-timeout with the {handler} handler needs --concurrency 1 "
            "(an in-process call can only be interrupted in the main thread)"
        )
    return built


@cli.command(epilog=EPILOG)
@connection_options
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
@click.option("--watch", is_flag=True, help="Show a live progress bar until the run is drained.")
@click.option(
    "--check", is_flag=True, help="Exit 0 only if the run is drained with no dead items, else 1."
)
@_option(
    "--interval",
    env="WQ_WATCH_INTERVAL",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between updates with --watch.",
)
def status(as_json: bool, watch: bool, check: bool, interval: float, **conn: Any) -> int:
    """Show a run's counts: total, pending, in flight, done, retried, dead, rate and ETA."""
    ctx = Context(**conn)
    current = watch_status(ctx.queue, interval, sys.stderr) if watch else ctx.queue.status()
    click.echo(current.to_json() if as_json else current.to_text())
    if check and not current.clean:
        return 1
    return 0


@cli.command(epilog=EPILOG)
@connection_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dead(as_json: bool, **conn: Any) -> int:
    """List dead-lettered items with their last error."""
    ctx = Context(**conn)
    items = ctx.queue.dead_items()
    for d in items:
        if as_json:
            click.echo(
                json.dumps(
                    {"position": d.position, "item": json.loads(d.item), "error": d.error},
                    ensure_ascii=False,
                )
            )
        else:
            click.echo(f"{d.position}\t{d.item}\t{d.error}")
    if not as_json:
        click.echo(f"{len(items)} dead item(s) in run {ctx.run_id}", err=True)
    return 0


@cli.command("retry-dead", epilog=EPILOG)
@connection_options
def retry_dead(**conn: Any) -> int:
    """Give every dead item a fresh set of attempts (run workers again to process them)."""
    ctx = Context(**conn)
    click.echo(f"requeued {ctx.queue.retry_dead()} dead item(s) in run {ctx.run_id}")
    return 0


@cli.command(epilog=EPILOG)
@connection_options
@_option(
    "--max-attempts",
    env="WQ_MAX_ATTEMPTS",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Items whose attempts are used up go to the dead-letter list.",
)
def reap(max_attempts: int, **conn: Any) -> int:
    """Reclaim expired leases now (workers also do this on their own)."""
    ctx = Context(**conn)
    total_requeued = total_dead = 0
    while True:
        requeued, died = ctx.queue.reap(max_attempts)
        total_requeued += requeued
        total_dead += died
        if requeued + died == 0:
            break
    click.echo(f"requeued {total_requeued}, dead-lettered {total_dead} in run {ctx.run_id}")
    return 0


@cli.command(epilog=EPILOG)
@connection_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(yes: bool, **conn: Any) -> int:
    """Delete every key of a run (its items, counts and dead letters)."""
    ctx = Context(**conn)
    if not yes and not click.confirm(f"Delete all keys of run {ctx.run_id}?"):
        return 1
    click.echo(f"deleted {ctx.queue.purge()} key(s) of run {ctx.run_id}")
    return 0


@cli.command("run", epilog=EPILOG)
@click.option(
    "--redis-url",
    envvar="WQ_REDIS_URL",
    show_envvar=True,
    default=None,
    help="Use this Redis instead of starting a private redis-server.",
)
@click.option(
    "--redis-password",
    envvar="WQ_REDIS_PASSWORD",
    show_envvar=True,
    default=None,
    help="Redis password; overrides one in the URL.",
)
@click.option(
    "--run",
    "run_id",
    envvar="WQ_RUN",
    show_envvar=True,
    default=None,
    help="Run id (default: local-TIMESTAMP).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=2,
    show_default=True,
    help="Worker processes to start.",
)
@click.option(
    "--command",
    "command_line",
    default=None,
    help="Command handler's command line, split like a shell would (e.g. 'echo {{ item }}').",
)
@items_options
@handler_options
def run_local(
    items: tuple[str, ...],
    items_file: Path | None,
    items_format: str | None,
    item_range: str | None,
    adopt_list: str | None,
    redis_url: str | None,
    redis_password: str | None,
    run_id: str | None,
    workers: int,
    command_line: str | None,
    **handler: Any,
) -> int:
    """Seed and process a run on this machine, with a live progress bar.

    \b
    Examples:
      wq run --workers 3 apple banana cherry
      wq run --workers 4 --range 0:10000 --handler demo --demo-sleep 0
      wq run --items-file urls.txt --handler command --command 'curl -fsS {{ item }}'
    """
    command = shlex.split(command_line) if command_line else []
    if command and handler["handler"] != "command":
        handler["handler"] = "command"
    run_id = run_id or time.strftime("local-%Y%m%d-%H%M%S")
    with ExitStack() as stack:
        url = redis_url or stack.enter_context(private_redis())
        ctx = Context(url, redis_password, 30.0, run_id, "warning", "text")
        # Check the options here, once, before starting processes that would all fail.
        build_handler(
            tuple(command),
            handler["handler"],
            handler["demo_sleep"],
            handler["python_target"],
            handler["shell"],
            handler["item_timeout_s"],
            handler["concurrency"],
        )
        result = _seed(ctx, items, items_file, items_format, item_range, adopt_list)
        click.echo(f"run {run_id}: {result.total} item(s), {workers} worker(s)", err=True)
        env = _worker_env(url, redis_password, run_id, handler)
        procs = start_workers(workers, env, command)
        stack.callback(stop_workers, procs)
        started = time.monotonic()
        final = watch_status(
            ctx.queue,
            0.5,
            sys.stderr,
            keep_going=lambda s: any(p.poll() is None for p in procs),
        )
        codes = [p.wait() for p in procs]
        click.echo(final.to_text())
        click.echo(f"finished in {time.monotonic() - started:.1f}s; worker exit codes {codes}")
        if final.clean and all(c == 0 for c in codes):
            return 0
        return 3 if final.drained else 1
    return 1


# How `wq run` hands its handler options to the worker processes it starts.
HANDLER_ENV = {
    "handler": "WQ_HANDLER",
    "demo_sleep": "WQ_DEMO_SLEEP",
    "python_target": "WQ_PYTHON",
    "shell": "WQ_SHELL",
    "lease_s": "WQ_LEASE",
    "item_timeout_s": "WQ_ITEM_TIMEOUT",
    "max_attempts": "WQ_MAX_ATTEMPTS",
    "concurrency": "WQ_CONCURRENCY",
    "poll_s": "WQ_POLL",
    "fail_on_dead": "WQ_FAIL_ON_DEAD",
}


def _worker_env(
    url: str, password: str | None, run_id: str, handler: dict[str, Any]
) -> dict[str, str]:
    env = {"WQ_REDIS_URL": url, "WQ_RUN": run_id, "WQ_LOG_LEVEL": "warning", "WQ_SEED_WAIT": "10"}
    if password:
        env["WQ_REDIS_PASSWORD"] = password
    for key, value in handler.items():
        if value is not None:
            env[HANDLER_ENV[key]] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


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
    except redis.RedisError as exc:
        click.echo(f"wq: error: Redis answered with an error: {exc}", err=True)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
