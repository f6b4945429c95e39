"""`wq work`: parse, then call the work layer."""

import os
from typing import Any

import click

from wq.base.options import ConnectionConfig, WorkerConfig, command_from_env
from wq.base.settings import click_options, pop_config
from wq.cli.common import EPILOG, connection_options, open_run
from wq.work.handlers import start_early


@click.command(
    epilog=EPILOG + " The command for --handler command comes after `--`, or as WQ_COMMAND "
    'holding a JSON list, e.g. \'["convert", "{{ item.src }}", "{{ item.dst }}"]\'.'
)
@connection_options
@click_options(WorkerConfig)
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
    connection = pop_config(ConnectionConfig, opts)
    config = pop_config(WorkerConfig, {**opts, "command": command or command_from_env(os.environ)})
    # The handler processes' interpreters start while this one imports the worker and the
    # store (redis-py): most of what stood between the spawn and the first lease.
    start_early(config)
    from wq.work.worker import work as run_worker

    queue, log = open_run(connection)
    return run_worker(queue, config, log)
