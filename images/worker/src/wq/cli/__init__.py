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


# What str.splitlines() breaks a line at, each shown as its Python escape instead.
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def error(message: str) -> None:
    """The one line of an error: a line break in what it quotes (an argument, a reply, a
    file name) is shown escaped, so that the line stays one."""
    click.echo(f"wq: error: {message.translate(_LINE_BREAKS)}", err=True)


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
        error(f"{exc.format_message()} (see --help)")
        code = exc.exit_code
    except WqError as exc:
        error(str(exc))
        code = exc.exit_code
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        error(f"Redis answered with an error: {exc}")
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
