"""`wq run`: parse, then seed and work a run on this machine (wq.localrun)."""

from typing import Any

import click

from wq.base.command_options import LocalRunOptions
from wq.base.options import ConnectionConfig, WorkerConfig
from wq.base.settings import click_option, click_options
from wq.cli.common import EPILOG, items_options
from wq.localrun import run_from_options


@click.command("run", epilog=EPILOG)
@click_option(
    ConnectionConfig,
    "redis_url",
    default="",
    show_default=False,
    help="Use this Redis instead of starting a private redis-server.",
)
@click_option(ConnectionConfig, "redis_password")
@click_option(ConnectionConfig, "redis_ca_cert")
@click_option(ConnectionConfig, "redis_wait")
@click_option(ConnectionConfig, "run_id", required=False, help="Run id (default: local-TIMESTAMP).")
@click_options(LocalRunOptions)
@click.option(
    "--command",
    "command_line",
    default=None,
    help="Command handler's command line, split like a shell would, each {{ ... }} kept "
    "whole (e.g. 'curl -fsS {{ item }}').",
)
@items_options
@click_options(WorkerConfig, skip=("worker_id", "seed_wait_s", "termination_log"))
def run_local(command_line: str | None, **opts: Any) -> int:
    """Seed and process a run on this machine, with a live progress bar.

    \b
    Examples:
      wq run --workers 3 apple banana cherry
      wq run --workers 4 --range 0:10000 --handler demo --demo-sleep 0
      wq run --items-file urls.txt --handler command --command 'curl -fsS {{ item }}'
    """
    return run_from_options(command_line, opts)
