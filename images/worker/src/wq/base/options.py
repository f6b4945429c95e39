"""The options of every command, part one: the Redis connection and the worker, which the
chart sets (wq.base.command_options has the other commands' options).

Each option is a setting (wq.base.settings): its flag, its WQ_* environment variable, its help
text and the chart value that sets it, declared once. From these tables come the click options
of every command, the environment `wq run` hands its workers, the config objects the layers
read, and the option table in the README; a chart test checks the worker Job's environment and
values.yaml against them. A new option is added to one of them, once; no command reads an
option or a variable by hand.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass

import click

from wq.base.errors import ConfigError
from wq.base.settings import Text, count, seconds, setting, setting_of, settings, shown

HANDLERS = ("demo", "command", "python")
# Where the python handler runs: a process of its own per slot, or the worker's.
ISOLATIONS = ("process", "none")
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class ConnectionConfig:
    """Where the run lives and how to log; every subcommand takes these."""

    redis_url: str = setting(
        "redis://localhost:6379/0",
        "--redis-url",
        "WQ_REDIS_URL",
        "Redis to use: redis://[:PASSWORD@]HOST:PORT/DB, rediss:// for TLS, or "
        "unix:///path/to/socket; query parameters: db, protocol, and for rediss:// "
        "ssl_check_hostname and ssl_cert_reqs.",
        type=Text(secret=True),
    )
    redis_password: str | None = setting(
        None,
        "--redis-password",
        "WQ_REDIS_PASSWORD",
        "Redis password; overrides one in the URL.",
        type=Text(secret=True),
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
        type=Text(),
        value="python",
    )
    python_isolation: str = setting(
        "process",
        "--python-isolation",
        "WQ_PYTHON_ISOLATION",
        "python handler: process runs the function in a process of its own per slot, started "
        "once and reused, so that an item that runs it out of memory, crashes it, exits or "
        "overruns --item-timeout fails that item alone (the process is started again); none "
        "calls it in the worker's own process (such an item then kills the worker).",
        type=click.Choice(ISOLATIONS),
        value="pythonIsolation",
    )
    python_memory_limit: int = setting(
        0,
        "--python-memory-limit",
        "WQ_PYTHON_MEMORY_LIMIT",
        "python handler, isolated: MiB each handler process may hold (its data segment); "
        "past it the function gets MemoryError and its item fails, while the process, the "
        "worker and the pod live on. 0: the container's memory limit less what the worker "
        "holds, shared among the processes (none without a limit); -1: none.",
        type=count(-1, 1 << 30),
        value="pythonMemoryLimit",
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
        "group is killed, and so is the python handler's process (started again for the next "
        "item).",
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
        type=Text(),
    )
    # Tuning, not options. Adaptive batching: lease about this many seconds of work per slot,
    # so millisecond items come in big batches and slow items one at a time (never hoarded).
    batch_target_s: float = 0.5
    max_batch: int = 500
    flush_interval_s: float = 0.2  # longest a finished item waits to be recorded
    # Items this slow are recorded one by one, at once: a round trip is then a few percent of
    # an item, and a worker killed between two items has nothing finished left unrecorded.
    record_at_once_s: float = 0.01


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


def markdown_table() -> str:
    """The README's table of worker settings: flag, variable, chart value, default."""
    rows = ["| flag | variable | chart value | default | what it does |", "|---|---|---|---|---|"]
    for cls in (WorkerConfig, ConnectionConfig):
        for f, s in settings(cls):
            flag = f"`{s.flag.split('/')[0]}`" if s.flag else "`-- CMD...`"
            value = f"`worker.{s.value}`" if s.value else "-"
            default = "required" if s.required else shown(f.default)
            rows.append(f"| {flag} | `{s.env}` | {value} | {default} | {s.help} |")
    return "\n".join(rows)
