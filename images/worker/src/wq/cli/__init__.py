"""The `wq` command line. Each command parses its options and calls one function of its layer;
`main` turns what goes wrong into one line and an exit code."""

import sys

import click
import redis

from wq import __version__
from wq.base.errors import WqError
from wq.cli import admin, reading, scaling, seeding, working
from wq.cli.common import EPILOG


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


for command in (
    seeding.seed,
    seeding.seal,
    seeding.digest,
    working.work,
    working.run_local,
    reading.status,
    reading.report,
    reading.dead,
    reading.exporter,
    admin.retry_dead,
    admin.reap,
    admin.purge,
    scaling.autoscale,
):
    cli.add_command(command)


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
