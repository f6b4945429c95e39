"""The `wq` command line. Each command parses its options and calls one function of its layer;
`main` turns what goes wrong into one line and an exit code."""

import importlib
import sys

import click

from wq import __version__
from wq.base.errors import WqError
from wq.cli.common import EPILOG

# Each command's module, imported when the command runs: `wq work` then starts without the
# seeder's parsers, the exporter's server or the autoscaler's Kubernetes client.
COMMANDS = {
    "autoscale": "scaling:autoscale",
    "dead": "reading:dead",
    "digest": "seeding:digest",
    "exporter": "reading:exporter",
    "purge": "admin:purge",
    "reap": "admin:reap",
    "report": "reading:report",
    "retry-dead": "admin:retry_dead",
    "run": "local:run_local",
    "seal": "seeding:seal",
    "seed": "seeding:seed",
    "status": "reading:status",
    "work": "working:work",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attr = where.split(":")
        command = getattr(importlib.import_module(f"wq.cli.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


def all_commands() -> dict[str, click.Command]:
    """Every command, each module imported (for documentation and its tests)."""
    ctx = click.Context(cli)
    return {name: command for name in COMMANDS if (command := cli.get_command(ctx, name))}


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wq")
def cli() -> None:
    """wq: fan a list of work items out to parallel workers through Redis, and know that
    every item was processed.

    \b
    A first taste on one machine (starts its own redis-server):
      wq run --workers 3 apple banana cherry
    In a cluster the Helm chart runs `wq seed` once and `wq work` in N pods.
    """


# What str.splitlines() breaks a line at, each shown as its Python escape instead.
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def error(message: str, prog: str = "wq") -> None:
    """The one line of an error: a line break in what it quotes (an argument, a reply, a
    file name) is shown escaped, so that the line stays one."""
    click.echo(f"{prog}: error: {message.translate(_LINE_BREAKS)}", err=True)


def main() -> None:
    """Console entry point: one-line errors, exit 2 for bad input, no tracebacks."""
    sys.exit(run_command(cli, "wq"))


def run_command(group: click.Group, prog: str) -> int:
    """Runs `group` on the command line's arguments; what goes wrong is one line on standard
    error, prefixed with `prog`, and the exit code."""
    try:
        code = group.main(prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo(f"{prog}: aborted", err=True)
        code = 130
    except click.ClickException as exc:
        error(f"{exc.format_message()} (see --help)", prog)
        code = exc.exit_code
    except WqError as exc:
        error(str(exc), prog)
        code = exc.exit_code
    except Exception as exc:
        # Imported here: a command that talks to Redis has imported it already, and the others
        # (wq work before its handler processes are started) start without it.
        from wq.store.connection import REDIS_ERRORS

        if not isinstance(exc, REDIS_ERRORS):
            raise
        error(f"Redis answered with an error: {exc}", prog)
        code = 1
    except KeyboardInterrupt:
        code = 130
    return code if isinstance(code, int) else 0
