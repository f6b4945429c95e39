"""`kubectl wq`: the `wq` commands on a Helm release's run, from the user's machine.

Each command finds the release's Redis by the chart's labels, port-forwards to it through the
Kubernetes API under the user's own RBAC, and runs the `wq` command of the same name on it;
the forward ends with the command. `kubectl wq ui` forwards to the exporter's page instead.
"""

import contextlib
import inspect
import signal
import threading
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from wq.base.errors import ConfigError
from wq.base.options import ConnectionConfig
from wq.cli import cli, run_command
from wq.cli.common import open_run

if TYPE_CHECKING:
    from wq.reach.release import Release

# The plugin's commands that run a `wq` command: which, and the flags they set.
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "status": ("status", {}),
    "watch": ("status", {"watch": True}),
    "report": ("report", {}),
    "dead": ("dead", {}),
    "retry-dead": ("retry-dead", {}),
    "purge": ("purge", {}),
}
# What a plugin command does, where it is not what the first paragraph of its `wq` help says.
SUMMARY = {"watch": "Show a live progress bar of the run until it is drained, then its counts."}
# The `wq` commands' connection settings that the plugin takes from the release.
REACHED = ("redis_url", "redis_password", "redis_ca_cert", "redis_cluster", "run_id")
EPILOG = (
    "RELEASE is a Helm release of the wq chart with its own Redis. The namespace and cluster "
    "are kubectl's: the kubeconfig's current context, unless given. Your Kubernetes user "
    "needs to list services and pods, get the Secret of the Redis password and get "
    "pods/portforward (the client's websocket port-forward) in that namespace."
)
RELEASE_PARAMS: list[click.Parameter] = [
    click.Argument(["release"]),
    click.Option(["-n", "--namespace"], help="The release's namespace."),
    click.Option(["--context"], help="The kubeconfig context to use."),
    click.Option(["--kubeconfig"], help="The kubeconfig file (default: KUBECONFIG, ~/.kube)."),
]
RUN_OPTION = click.Option(
    ["--run", "run_id"],
    help="The run (default: the release's current run, that of its newest revision).",
)


def find_release(
    release: str, namespace: str | None, context: str | None, kubeconfig: str | None
) -> "Release":
    """The release, through the API of the kubeconfig (imported here: the Kubernetes client
    takes half a second to import, and --help needs none of it)."""
    from wq.reach.kubeapi import Api
    from wq.reach.release import Release

    return Release(Api(kubeconfig, context, namespace), release)


def say(why: str) -> None:
    """Why the command waits (a fresh install's pods), on standard error."""
    click.echo(f"kubectl wq: {why}", err=True)


@contextlib.contextmanager
def reached(
    release: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    redis_wait: float,
) -> Iterator[tuple[dict[str, Any], str]]:
    """The connection settings of the release's Redis, port-forwarded while in the block, and
    the release's current run; a Redis that is not ready yet is waited for up to
    `redis_wait` seconds, as the `wq` commands wait for one that is out of reach."""
    from wq.reach.forward import LocalForward

    found = find_release(release, namespace, context, kubeconfig)
    redis = found.redis(redis_wait, say)
    password = found.password(redis)
    run = found.current_run(redis)
    with LocalForward(found.api.dialer(redis.pod, redis.port)) as forward:
        yield (
            {
                "redis_url": f"redis://127.0.0.1:{forward.port}/0",
                "redis_password": password,
                "redis_ca_cert": "",
                "redis_cluster": False,
            },
            run,
        )


def wq_command(name: str) -> click.Command:
    """The `wq` command `name`, importing its module only (as `wq NAME` does)."""
    command = cli.get_command(click.Context(cli), name)
    assert command is not None, name
    return command


def plugin_command(name: str, runs: str, fixed: dict[str, Any]) -> click.Command:
    """The plugin command `name`: the `wq` command `runs` with the flags `fixed`."""
    command = wq_command(runs)
    kept = [p for p in command.params if p.name not in REACHED and p.name not in fixed]

    def callback(
        release: str,
        namespace: str | None,
        context: str | None,
        kubeconfig: str | None,
        run_id: str | None,
        **params: Any,
    ) -> Any:
        assert command.callback is not None
        wait = params["redis_wait"]
        with reached(release, namespace, context, kubeconfig, wait) as (connection, current):
            return command.callback(**params, **fixed, **connection, run_id=run_id or current)

    flags = "".join(f" --{k}" for k in fixed)
    summary = SUMMARY.get(name) or inspect.cleandoc(command.help or "").split("\n\n")[0]
    return click.Command(
        name,
        params=[*RELEASE_PARAMS, RUN_OPTION, *kept],
        callback=callback,
        help=f"{summary}\n\nRuns `wq {runs}{flags}` on the release's run.",
        epilog=EPILOG,
    )


def run_digest(
    release: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    run_id: str | None,
    redis_wait: float,
    **items: Any,
) -> int:
    from wq.seed.items_source import ItemsSource
    from wq.seed.seeder import digest_of

    source = ItemsSource(**items)
    expected = digest_of(source) if source.given() else None
    with reached(release, namespace, context, kubeconfig, redis_wait) as (connection, current):
        config = ConnectionConfig(**connection, redis_wait=redis_wait, run_id=run_id or current)
        queue, _ = open_run(config)
        digest = queue.reading.status().digest
    if digest is None:
        raise ConfigError(f"run {config.run_id!r} has no digest yet (it is open: seal it first)")
    click.echo(digest)
    if expected is None:
        return 0
    if expected != digest:
        click.echo(f"differs: the items given have digest {expected}", err=True)
        return 1
    click.echo("the run holds exactly the items given", err=True)
    return 0


def digest_command() -> click.Command:
    wq_digest = wq_command("digest")
    redis_wait = next(p for p in wq_command("status").params if p.name == "redis_wait")
    return click.Command(
        "digest",
        params=[*RELEASE_PARAMS, RUN_OPTION, redis_wait, *wq_digest.params],
        callback=run_digest,
        help="Print the digest of the items the release's run was seeded with; given items "
        "(as `wq digest` takes them), also whether the run holds exactly those: exit 1 if "
        "not.",
        epilog=EPILOG,
    )


def serve_ui(
    release: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    port: int,
    wait_s: float,
) -> int:
    from wq.reach.forward import LocalForward

    found = find_release(release, namespace, context, kubeconfig)
    exporter = found.exporter(wait_s, say)
    dial = found.api.dialer(exporter.pod, exporter.port)
    try:
        forward = LocalForward(dial, port)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc} (--port)"
        ) from None
    with forward:
        url = f"http://127.0.0.1:{forward.port}/"
        try:
            with urllib.request.urlopen(url, timeout=15) as page:
                html = page.headers.get_content_type() == "text/html"
        except OSError as exc:
            raise ConfigError(f"the exporter of {found.where} does not answer: {exc}") from None
        if not html:
            raise ConfigError(
                f"the exporter of {found.where} serves no page: set metrics.ui.enabled=true"
            )
        click.echo(f"The wq page of {found.where}: {url}  (Ctrl-C ends the port-forward)")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    return 0


def ui_command() -> click.Command:
    return click.Command(
        "ui",
        params=[
            *RELEASE_PARAMS,
            click.Option(
                ["--port"],
                type=click.IntRange(0, 65535),
                default=9899,
                show_default=True,
                help="Local port of the page (0: any free port).",
            ),
            click.Option(
                ["--wait", "wait_s"],
                type=click.FloatRange(0),
                default=60.0,
                show_default=True,
                help="Seconds to wait for the exporter to be ready (a fresh install's).",
            ),
        ],
        callback=serve_ui,
        help="Open the release's live web page: port-forward to its exporter and print the "
        "URL, until Ctrl-C.",
        epilog=EPILOG,
    )


class PluginGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*RUNS, "digest", "ui"])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "digest":
            return digest_command()
        if cmd_name == "ui":
            return ui_command()
        if cmd_name in RUNS:
            return plugin_command(cmd_name, *RUNS[cmd_name])
        return None


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
def plugin() -> None:
    """kubectl wq: read and manage the run of a wq Helm release from your machine, through the
    Kubernetes API (a port-forward that ends with the command).

    \b
    Examples:
      kubectl wq status my-release -n jobs
      kubectl wq watch my-release
      kubectl wq report my-release --format csv -o report.csv
      kubectl wq dead my-release; kubectl wq retry-dead my-release
    """


def main() -> None:
    raise SystemExit(run_command(plugin, "kubectl wq"))
