"""What every `wq` command shares: the epilog, the connection it opens, the items options."""

from collections.abc import Callable
from typing import Any, TypeVar

import click

from wq.base.command_options import ItemsOptions
from wq.base.logs import EventLog
from wq.base.options import ConnectionConfig
from wq.base.settings import Text, click_options, pop_config
from wq.store.queue import RunQueue, open_queue

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = (
    "Settings can also be given as the WQ_* environment variable shown beside them; "
    "one-off flags (--json, --watch, --check, --yes, --open, --append) cannot."
)

connection_options = click_options(ConnectionConfig)


def items_options(func: F) -> F:
    return click.argument("items", nargs=-1, type=Text())(click_options(ItemsOptions)(func))


def connect(opts: dict[str, Any]) -> tuple[RunQueue, EventLog]:
    """The run's queue on its Redis, and a log, from the connection settings among a command's
    arguments (which it takes out of `opts`)."""
    config = pop_config(ConnectionConfig, opts)
    log = EventLog(level=config.log_level, fmt=config.log_format)
    return open_queue(config, log), log
