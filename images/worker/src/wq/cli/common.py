"""What every `wq` command shares: the epilog, the connection it opens, the items options."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wq.base.logs import EventLog
from wq.base.options import ConnectionConfig
from wq.base.settings import Text, click_options, pop_config

if TYPE_CHECKING:
    from wq.store.queue import RunQueue

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = (
    "Settings can also be given as the WQ_* environment variable shown beside them; "
    "one-off flags (--json, --watch, --check, --yes, --open, --append) cannot."
)

connection_options = click_options(ConnectionConfig)


def items_options(func: F) -> F:
    # Only the commands that take items (seed, run) pay for importing their options.
    from wq.base.command_options import ItemsOptions

    return click.argument("items", nargs=-1, type=Text())(click_options(ItemsOptions)(func))


def connect(opts: dict[str, Any]) -> "tuple[RunQueue, EventLog]":
    """The run's queue on its Redis, and a log, from the connection settings among a command's
    arguments (which it takes out of `opts`)."""
    return open_run(pop_config(ConnectionConfig, opts))


def open_run(config: ConnectionConfig) -> "tuple[RunQueue, EventLog]":
    """The run's queue on its Redis, and a log."""
    # The store, and redis-py with it (the largest part of a command's start-up), is imported
    # when a command connects: so `wq work` starts its handler processes first.
    from wq.store.queue import open_queue

    log = EventLog(level=config.log_level, fmt=config.log_format)
    return open_queue(config, log), log
