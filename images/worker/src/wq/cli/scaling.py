"""`wq autoscale`: parse, then hand over to the scale layer."""

from typing import Any

import click

from wq.base.command_options import AutoscaleOptions
from wq.base.options import WorkerConfig
from wq.base.settings import click_option, click_options, pop_config
from wq.cli.common import EPILOG, connect, connection_options
from wq.scale.autoscale import AutoscaleConfig


@click.command(epilog=EPILOG)
@connection_options
@click_options(AutoscaleOptions)
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
    # Imported here: the kubernetes client takes a while to import, and only this command
    # needs it.
    from wq.scale import kube

    queue, log = connect(opts)
    return kube.autoscale(queue, pop_config(AutoscaleConfig, opts), concurrency, log)
