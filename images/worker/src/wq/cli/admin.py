"""`wq retry-dead`, `wq reap` and `wq purge`: one store call each on the run."""

import sys
from typing import Any

import click

from wq.base.errors import ConfigError
from wq.base.options import WorkerConfig
from wq.base.settings import click_option
from wq.cli.common import EPILOG, connect, connection_options


@click.command("retry-dead", epilog=EPILOG)
@connection_options
def retry_dead(**conn: Any) -> int:
    """Give every dead item a fresh set of attempts (run workers again to process them)."""
    queue, _ = connect(conn)
    click.echo(f"requeued {queue.admin.retry_dead()} dead item(s) in run {queue.run}")
    return 0


@click.command(epilog=EPILOG)
@connection_options
@click_option(
    WorkerConfig, "max_attempts", help="Items whose attempts are used up go to the dead list."
)
def reap(max_attempts: int, **conn: Any) -> int:
    """Reclaim expired leases now (workers also do this on their own)."""
    queue, _ = connect(conn)
    reaped = queue.leases.reap_all(max_attempts)
    click.echo(f"requeued {reaped.requeued}, dead-lettered {reaped.dead} in run {queue.run}")
    return 0


@click.command(epilog=EPILOG)
@connection_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(yes: bool, **conn: Any) -> int:
    """Delete every key of a run (its items, counts and dead letters)."""
    queue, _ = connect(conn)
    if not yes and not confirmed(f"Delete all keys of run {queue.run}?"):
        return 1
    click.echo(f"deleted {queue.admin.purge()} key(s) of run {queue.run}")
    return 0


def confirmed(question: str) -> bool:
    """The user's answer; a standard input that ends before one (a Job, a script) is asked
    to say --yes, exit 2, rather than taken as an interrupt (exit 130)."""
    try:
        return click.confirm(question)
    except click.exceptions.Abort:
        if sys.stdin.isatty():
            raise  # Ctrl-C or Ctrl-D at the prompt: aborted by the user
        raise ConfigError(
            f"{question} had no answer on standard input (not a terminal): pass --yes"
        ) from None
