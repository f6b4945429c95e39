"""`wq run`: the whole flow on one machine. Starts a private redis-server unless given a
URL, seeds, runs N worker processes with a progress bar, and prints a summary."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from wq.base.command_options import LocalRunOptions
from wq.base.logs import EventLog
from wq.base.options import ConnectionConfig, WorkerConfig
from wq.base.settings import pop_config, to_env
from wq.read.watch import watch_status
from wq.seed.items_source import ItemsSource
from wq.seed.seeder import seed_from
from wq.store.local_redis import RedisServer
from wq.store.queue import open_queue
from wq.work.command_handler import split_command_line
from wq.work.handlers import build_handler

EXIT_OK, EXIT_FAILED, EXIT_DEAD_ITEMS = 0, 1, 3


def run_from_options(command_line: str | None, opts: dict[str, Any]) -> int:
    """`wq run` from its parsed options: a private redis-server unless --redis-url names one,
    a run id from the time unless --run names one, and --command as the command handler's."""
    connection = ConnectionConfig(
        redis_url=opts.pop("redis_url"),
        redis_password=opts.pop("redis_password"),
        redis_ca_cert=opts.pop("redis_ca_cert"),
        redis_wait=opts.pop("redis_wait"),
        run_id=opts.pop("run_id") or time.strftime("local-%Y%m%d-%H%M%S"),
        log_level="warning",
    )
    config = pop_config(WorkerConfig, opts)
    if command_line:
        config = replace(config, handler="command", command=split_command_line(command_line))
    local = pop_config(LocalRunOptions, opts)
    return run_locally(connection, config, ItemsSource(**opts), local.workers)


def run_locally(
    connection: ConnectionConfig, config: WorkerConfig, source: ItemsSource, workers: int
) -> int:
    """Seed and work a run with `workers` processes; 0 only if every item is done."""
    # Check the handler settings once, before starting processes that would all fail (and stop
    # the python handler's processes that check started).
    build_handler(config).cancel_all()
    with ExitStack() as stack:
        if not connection.redis_url:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="wq-"))
            server = RedisServer(Path(tmp), unix=True)
            server.start()
            stack.callback(server.stop)
            connection = replace(connection, redis_url=server.url)
        queue = open_queue(connection, EventLog(level=connection.log_level))
        stack.callback(queue.close)
        result = seed_from(queue, source)
        print(f"run {queue.run}: {result.total} item(s), {workers} worker(s)", file=sys.stderr)
        # The workers share this process's container: their summaries go to the log alone.
        env = {
            **to_env(connection),
            **to_env(config),
            "WQ_SEED_WAIT": "10",
            "WQ_TERMINATION_LOG": "",
        }
        procs = start_workers(workers, env)
        stack.callback(stop_workers, procs)
        started = time.monotonic()
        final = watch_status(
            queue, 0.5, sys.stderr, keep_going=lambda s: any(p.poll() is None for p in procs)
        )
        codes = [p.wait() for p in procs]
        print(final.to_text())
        print(f"finished in {time.monotonic() - started:.1f}s; worker exit codes {codes}")
        if final.clean and all(c == 0 for c in codes):
            return EXIT_OK
        return EXIT_DEAD_ITEMS if final.drained else EXIT_FAILED


def start_workers(n: int, env: Mapping[str, str]) -> list["subprocess.Popen[bytes]"]:
    argv = [sys.executable, "-m", "wq", "work"]
    return [
        subprocess.Popen(argv, env={**os.environ, **env, "WQ_WORKER_ID": f"local-{i}"})
        for i in range(n)
    ]


def stop_workers(workers: list["subprocess.Popen[bytes]"]) -> None:
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
