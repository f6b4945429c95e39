"""Every setting of a worker and of a Redis connection, in one table.

Each setting is a dataclass field whose metadata says its command-line flag, its WQ_*
environment variable, its help text and the chart value that sets it. From this table come
the click options of `wq work` and `wq run`, the environment `wq run` hands its workers, the
config objects the worker and the handlers read, and the option table in the README; a chart
test checks the worker Job's environment and values.yaml against it. A new setting is added
here, once.
"""

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, TypeVar

import click

from wq.base.errors import ConfigError

HANDLERS = ("demo", "command", "python")
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")


class Number(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """A finite float or int within bounds: nan, inf and overflowing values are one-line errors,
    not tracebacks or endless waits."""

    def __init__(self, integer: bool, low: float, high: float) -> None:
        self.integer = integer
        self.low = low
        self.high = high
        self.name = "integer" if integer else "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number: float
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip()) if self.integer else float(str(value).strip())
            except (ValueError, OverflowError):
                self.fail(f"{value!r} is not a valid {self.name}", param, ctx)
        if not self.integer and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if not self.low <= number <= self.high:
            self.fail(f"{value} is not in the range {self.low:g} to {self.high:g}", param, ctx)
        return number


def seconds(low: float = 0.0, high: float = 7 * 24 * 3600.0) -> Number:
    """Seconds: at most a week, which keeps every derived millisecond value exact."""
    return Number(False, low, high)


def count(low: int, high: int) -> Number:
    return Number(True, low, high)


@dataclass(frozen=True)
class Setting:
    flag: str | None  # "--lease"; booleans "--shell/--no-shell"; None: not a flag
    env: str
    help: str
    type: "click.ParamType[Any, Any] | None" = None
    value: str | None = None  # the chart value (under `worker.`) that sets it; None: none
    required: bool = False
    # An empty variable sets the empty string (which turns something off) rather than leaving
    # the default, as click does with empty variables.
    empty_env_is_value: bool = False


def setting(default: Any, flag: str | None, env: str, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"setting": Setting(flag, env, help, **kw)})


@dataclass(frozen=True)
class ConnectionConfig:
    """Where the run lives and how to log; every subcommand takes these."""

    redis_url: str = setting(
        "redis://localhost:6379/0",
        "--redis-url",
        "WQ_REDIS_URL",
        "Redis to use: redis://[:PASSWORD@]HOST:PORT/DB, rediss:// for TLS, or "
        "unix:///path/to/socket.",
    )
    redis_password: str | None = setting(
        None, "--redis-password", "WQ_REDIS_PASSWORD", "Redis password; overrides one in the URL."
    )
    redis_ca_cert: str = setting(
        "",
        "--redis-ca-cert",
        "WQ_REDIS_CA_CERT",
        "CA certificate file (PEM) to verify a rediss:// server with, instead of the system's CAs.",
    )
    redis_cluster: bool = setting(
        False,
        "--redis-cluster/--no-redis-cluster",
        "WQ_REDIS_CLUSTER",
        "The URL names a node of a Redis Cluster: use a cluster client (a run's keys share "
        "one slot, so its scripts run on one node).",
    )
    redis_wait: float = setting(
        60.0,
        "--redis-wait",
        "WQ_REDIS_WAIT",
        "Seconds to keep retrying while Redis is unreachable before failing.",
        type=seconds(),
        value="redisWait",
    )
    run_id: str = setting(
        "",
        "--run",
        "WQ_RUN",
        "Run id: letters, digits, '.', '_' or '-', at most 63 characters.",
        required=True,
    )
    log_level: str = setting(
        "info",
        "--log-level",
        "WQ_LOG_LEVEL",
        "Least severe log event to print.",
        type=click.Choice(LOG_LEVELS),
    )
    log_format: str = setting(
        "text",
        "--log-format",
        "WQ_LOG_FORMAT",
        "Log lines as logfmt text or JSON.",
        type=click.Choice(LOG_FORMATS),
    )


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker does with each item, and how it leases, retries and waits."""

    handler: str = setting(
        "demo",
        "--handler",
        "WQ_HANDLER",
        "demo: print 'Working on ITEM' and sleep; command: run a command per item; "
        "python: call MODULE:FUNCTION with the item.",
        type=click.Choice(HANDLERS),
        value="handler",
    )
    demo_sleep: float = setting(
        1.0,
        "--demo-sleep",
        "WQ_DEMO_SLEEP",
        "Seconds the demo handler sleeps per item.",
        type=seconds(),
        value="demoSleep",
    )
    command: tuple[str, ...] = setting(
        (),
        None,
        "WQ_COMMAND",
        "The command handler's command: the arguments after `--`, or a JSON list of strings in "
        "the variable. Each argument is a template: {{ item }}, {{ item.src }}; a value that "
        "is not a string goes in as compact JSON.",
        value="command",
    )
    shell: bool = setting(
        False,
        "--shell/--no-shell",
        "WQ_SHELL",
        "Command handler: join the arguments and run them with /bin/sh -c. Every value a "
        "template inserts is quoted as one word, so write tags bare, never inside quotes "
        '(refused); shell code reads the raw item from "$WQ_ITEM".',
        value="shell",
    )
    python: str = setting(
        "",
        "--python",
        "WQ_PYTHON",
        "MODULE:FUNCTION for the python handler; called with the decoded item. What it returns "
        "(anything JSON can hold; None: nothing) is the item's output.",
        value="python",
    )
    capture_stdout: bool = setting(
        False,
        "--capture-stdout/--no-capture-stdout",
        "WQ_CAPTURE_STDOUT",
        "Command handler: the command's standard output is the item's output (its standard "
        "error is still logged). Without it, the output is what the command writes to the file "
        "named by $WQ_OUTPUT, if it writes one.",
        value="captureStdout",
    )
    max_output_bytes: int = setting(
        DEFAULT_MAX_OUTPUT_BYTES,
        "--max-output-bytes",
        "WQ_MAX_OUTPUT_BYTES",
        "Largest output stored for one item; a bigger one fails the attempt with that reason "
        "(it is never cut short).",
        type=count(0, 16 * 1024 * 1024),
        value="maxOutputBytes",
    )
    lease_s: float = setting(
        30.0,
        "--lease",
        "WQ_LEASE",
        "Lease length in seconds; renewed while the item runs, reclaimed by other workers if "
        "this one dies.",
        type=seconds(0.1),
        value="lease",
    )
    item_timeout_s: float = setting(
        0.0,
        "--item-timeout",
        "WQ_ITEM_TIMEOUT",
        "Seconds one attempt at an item may take (0: no limit); a command's whole process "
        "group is killed.",
        type=seconds(),
        value="itemTimeout",
    )
    max_attempts: int = setting(
        3,
        "--max-attempts",
        "WQ_MAX_ATTEMPTS",
        "Attempts per item before it goes to the dead-letter list.",
        type=count(1, 1000),
        value="maxAttempts",
    )
    concurrency: int = setting(
        1,
        "--concurrency",
        "WQ_CONCURRENCY",
        "Items processed at once by one worker process.",
        type=count(1, 256),
        value="concurrency",
    )
    seed_wait_s: float = setting(
        300.0,
        "--seed-wait",
        "WQ_SEED_WAIT",
        "Seconds to wait for the run to be seeded before failing.",
        type=seconds(),
        value="seedWait",
    )
    poll_s: float = setting(
        1.0,
        "--poll",
        "WQ_POLL",
        "Seconds between checks while other workers still hold the last items.",
        type=seconds(0.01, 3600),
        value="poll",
    )
    fail_on_dead: bool = setting(
        False,
        "--fail-on-dead/--no-fail-on-dead",
        "WQ_FAIL_ON_DEAD",
        "Exit 3 instead of 0 when the run drains with dead items.",
        value="failOnDead",
    )
    results_ttl_s: int = setting(
        7 * 24 * 3600,
        "--results-ttl",
        "WQ_RESULTS_TTL",
        "Seconds a drained run's keys (its items, records and outputs, for `wq report`) are "
        "kept once it drains; 0: until `wq purge`.",
        type=count(0, 3650 * 24 * 3600),
        value="resultsTtl",
    )
    termination_log: str = setting(
        "/dev/termination-log",
        "--termination-log",
        "WQ_TERMINATION_LOG",
        "File the worker writes its one-line summary to as it exits (processed, failed, mean "
        "item time, why it exits), for `kubectl describe pod`; written only if it exists, as "
        "Kubernetes' termination message file does in a container. Empty: none.",
        empty_env_is_value=True,
    )
    worker_id: str = setting(
        "",
        "--worker-id",
        "WQ_WORKER_ID",
        "Name in logs and in the records of the items it finishes (default: HOSTNAME-PID; the "
        "chart sets the pod's name).",
    )
    # Tuning, not options. Adaptive batching: lease about this many seconds of work per slot,
    # so millisecond items come in big batches and slow items one at a time (never hoarded).
    batch_target_s: float = 0.5
    max_batch: int = 500
    flush_interval_s: float = 0.2  # longest a finished item waits to be recorded
    # Items this slow are recorded one by one, at once: a round trip is then a few percent of
    # an item, and a worker killed between two items has nothing finished left unrecorded.
    record_at_once_s: float = 0.01


def settings(cls: type) -> list[tuple[Field[Any], Setting]]:
    """The fields of a config class that are settings, in table order."""
    return [(f, f.metadata["setting"]) for f in fields(cls) if "setting" in f.metadata]


def setting_of(cls: type, name: str) -> Setting:
    return dict((f.name, s) for f, s in settings(cls))[name]


def click_option(cls: type, name: str, **overrides: Any) -> Callable[[F], F]:
    """The click option of one setting."""
    for f, s in settings(cls):
        if f.name == name:
            assert s.flag is not None, f"{name} has no flag"
            kwargs: dict[str, Any] = {
                "envvar": s.env,
                "show_envvar": True,
                "help": s.help,
                "required": s.required,
            }
            if not s.required:
                kwargs.update(default=f.default, show_default=f.default not in ("", None))
            if s.type is not None:
                kwargs["type"] = s.type
            if s.empty_env_is_value:
                kwargs["callback"] = _empty_env_is_value
            kwargs.update(overrides)
            return click.option(s.flag, name, **kwargs)
    raise KeyError(name)


def _empty_env_is_value(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    source = ctx.get_parameter_source(param.name or "")
    envvar = param.envvar if isinstance(param.envvar, str) else None
    if source is click.ParameterSource.DEFAULT and envvar and os.environ.get(envvar) == "":
        return ""
    return value


def click_options(cls: type, *, skip: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Every flag of a config class as click options, in table order."""
    names = [f.name for f, s in settings(cls) if s.flag is not None and f.name not in skip]

    def decorate(func: F) -> F:
        for name in reversed(names):
            func = click_option(cls, name)(func)
        return func

    return decorate


def pop_config(cls: type[C], kwargs: dict[str, Any]) -> C:
    """Take a config class's settings out of a click command's keyword arguments."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})


def command_from_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """WQ_COMMAND: a JSON list of strings (one entry per argument, as the chart writes it)."""
    text = environ.get(setting_of(WorkerConfig, "command").env, "")
    if not text:
        return ()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ConfigError('WQ_COMMAND must be a JSON list of strings, e.g. ["echo", "{{ item }}"]')
    return tuple(value)


def to_env(config: Any) -> dict[str, str]:
    """The WQ_* variables that give another process the same settings (for `wq run`)."""
    env: dict[str, str] = {}
    for f, s in settings(type(config)):
        value = getattr(config, f.name)
        if value is None or (value in ("", ()) and not s.empty_env_is_value):
            continue
        if isinstance(value, bool):
            env[s.env] = "true" if value else "false"
        elif isinstance(value, tuple):
            env[s.env] = json.dumps(list(value))
        else:
            env[s.env] = str(value)
    return env


def markdown_table() -> str:
    """The README's table of worker settings: flag, variable, chart value, default."""
    rows = ["| flag | variable | chart value | default | what it does |", "|---|---|---|---|---|"]
    for cls in (WorkerConfig, ConnectionConfig):
        for f, s in settings(cls):
            flag = f"`{s.flag.split('/')[0]}`" if s.flag else "`-- CMD...`"
            value = f"`worker.{s.value}`" if s.value else "-"
            default = "required" if s.required else _shown(f.default)
            rows.append(f"| {flag} | `{s.env}` | {value} | {default} | {s.help} |")
    return "\n".join(rows)


def _shown(default: Any) -> str:
    if default is MISSING or default in ("", None, ()):
        return "-"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    return f"`{default:g}`" if isinstance(default, float) else f"`{default}`"
