"""`wq work` imports only what it uses, in an order that lets its handler processes start while
it imports the rest: what brings its spawn-to-first-lease time (make bench) near arq's.

Each check imports in a fresh interpreter and reads its sys.modules: no timing, so a slow
machine passes as a fast one does, and a module that creeps back onto the path fails.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.polling import wait_until
from tests.unit.cli_runner import wq
from wq.base.item import Item, encode
from wq.base.options import WorkerConfig
from wq.work import handler_process
from wq.work.handlers import build_handler, start_early
from wq.work.supervisor import HandlerProcesses

# Modules that only other commands or handlers need.
OTHER_COMMANDS = (
    "jinja2",  # the command handler's templates
    "fsspec",  # wq seed's object-store sources
    "kubernetes",  # wq autoscale
    "prometheus_client",  # wq exporter
    "yaml",  # wq seed's item formats
    "ijson",
    "wq.seed",
    "wq.read",
    "wq.scale",
)


# The modules loaded: a module wq.store defers is in sys.modules, not yet loaded.
PRINT_LOADED = (
    "import json, sys\n"
    "loaded = (n for n, m in sys.modules.items() if type(m).__name__ != '_Deferred')\n"
    "print(json.dumps(sorted(loaded)))"
)


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{PRINT_LOADED}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(json.loads(out))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules)


def test_the_cli_and_wq_work_import_no_redis_before_the_handler_processes_start() -> None:
    # What `wq work` has imported when it calls start_early: not redis-py (which imports asyncio
    # even with its asyncio client deferred) nor the store, which it imports after.
    modules = modules_after("import wq.cli, wq.cli.working")
    assert loaded(modules, ("redis", "asyncio", "wq.store.queue", *OTHER_COMMANDS)) == []


def test_the_worker_imports_nothing_that_only_other_commands_use() -> None:
    modules = modules_after("import wq.cli, wq.cli.working, wq.work.worker")
    assert loaded(modules, OTHER_COMMANDS) == []


def test_redis_py_loads_without_opentelemetry_which_a_handler_can_still_import() -> None:
    # Installed (the object-store sources' Google client needs it), so redis-py would import
    # it as it loads; wq hides it then. The check would pass without it: it must be there.
    modules = modules_after(
        "import importlib.util\n"
        "assert importlib.util.find_spec('opentelemetry'), 'opentelemetry is not installed'\n"
        "import wq.store, redis.observability.metrics as metrics, sys\n"
        "assert not metrics.OTEL_AVAILABLE\n"
        "assert 'opentelemetry' not in sys.modules\n"
        "import opentelemetry.metrics"
    )
    assert "redis" in modules
    assert "opentelemetry.metrics" in modules


# What `import redis` would load that the worker never uses (wq.store.DEFERRED), and what only
# the command handler needs.
NOT_FOR_THE_WORKER = (
    "redis.asyncio.client",
    "importlib.metadata",
    "importlib.resources",
    "wq.work.command_handler",
    "tempfile",
    "ctypes",
)


def test_the_worker_connects_without_redis_pys_asyncio_client_or_package_metadata(
    redis_url: str,
) -> None:
    # Connected, as a worker is at its first lease: redis-py would read importlib.metadata for
    # CLIENT SETINFO's version, which wq names itself.
    modules = modules_after(
        "import wq.cli, wq.cli.working, wq.work.worker, wq.work.handlers\n"
        "from wq.store.connection import RedisSettings\n"
        f"assert RedisSettings.from_url({redis_url!r}).client().ping()"
    )
    assert "redis" in modules
    assert loaded(modules, NOT_FOR_THE_WORKER) == []


def test_what_wq_defers_of_redis_py_is_there_when_a_handler_asks_for_it() -> None:
    modules = modules_after(
        "import sys, wq.store, redis, redis.utils\n"
        "from redis.asyncio import Redis\n"  # through the stand-in redis-py holds
        "assert Redis is redis.asyncio.Redis is sys.modules['redis.asyncio.client'].Redis\n"
        "import redis.asyncio.observability.recorder as loaded_meanwhile\n"
        "assert redis.asyncio.observability.recorder is loaded_meanwhile\n"
        "import importlib.metadata\n"
        "assert redis.utils.get_lib_version() == importlib.metadata.version('redis')\n"
        "assert redis.utils.get_lib_version() == redis.__version__"
    )
    assert {"redis.asyncio.client", "importlib.metadata"} <= modules


@pytest.mark.parametrize("command", ["status", "purge", "seed", "report"])
def test_other_commands_import_no_worker(command: str) -> None:
    modules = modules_after(f"import wq.cli; wq.cli.cli.get_command(None, {command!r})")
    assert loaded(modules, ("jinja2", "wq.work.worker", "wq.work.handlers")) == []


def test_the_handler_process_starts_without_the_option_tables() -> None:
    # wq.work.child runs in every handler process: the interpreter and this are its start.
    modules = modules_after("import wq.work.child")
    assert loaded(modules, ("click", "redis", "wq.base.options", "wq.store", "jinja2")) == []


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_handler_processes_started_early_that_cannot_load_charge_no_item(
    tmp_path: Path, redis_url: str, run_id: str, concurrency: str
) -> None:
    # Started before the worker has connected, they are still waited for before its first
    # lease: exit 2 with the one line, every item pending and none attempted.
    (tmp_path / "wq_test_broken.py").write_text("raise RuntimeError('no config')\n")
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id, "PYTHONPATH": str(tmp_path)}
    assert wq("seed", "a", "b", env=env).returncode == 0
    args = ("--handler", "python", "--python", "wq_test_broken:handle")
    result = wq("work", *args, "--concurrency", concurrency, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "wq: error: python handler 'wq_test_broken:handle': cannot import 'wq_test_broken': "
        "RuntimeError: no config"
    ]
    status = json.loads(wq("status", "--json", env=env).stdout)
    assert (status["pending"], status["in_flight"], status["done"]) == (2, 0, 0), status


MARKED = "tests.unit.handler_says_when_imported:handle"


def imported_by(directory: Path) -> set[int]:
    return {int(p.name.removeprefix("imported-")) for p in directory.glob("imported-*")}


def all_imported(directory: Path, count: int) -> set[int]:
    """Waits until `count` handler processes have imported MARKED: their pids."""

    def pids() -> set[int] | None:
        found = imported_by(directory)
        return found if len(found) == count else None

    return wait_until(f"{count} handler processes to import the handler", pids, 60)


def test_handler_processes_started_early_load_the_function_at_once_and_are_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sent what to import as they start: the function loads while the worker imports the
    # rest of itself; then the handler takes those processes.
    # As `wq work` does: started from its settings before it imports the store, then taken by
    # the handler built from the same settings.
    monkeypatch.setenv("WQ_TEST_LOG_DIR", str(tmp_path))
    settings = WorkerConfig(
        handler="python", python=MARKED, concurrency=2, worker_id="w", termination_log=""
    )
    start_early(settings)
    early = all_imported(tmp_path, 2)  # before any handler exists
    handler = build_handler(settings)
    try:
        assert isinstance(handler, HandlerProcesses)
        assert {c.pid for c in handler.children} == early
        assert handler(Item(0, 1, encode("item"))) is None
    finally:
        handler.close()
    assert imported_by(tmp_path) == early  # no other process was started


def test_handler_processes_started_early_for_other_settings_are_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WQ_TEST_LOG_DIR", str(tmp_path))
    # Told another output limit: a process that must not run these items.
    env = handler_process.handler_environment(os.environ)
    handler_process.start_early(1, env, handler_process.hello(MARKED, 1, 4, -1))
    [early] = all_imported(tmp_path, 1)
    handler = HandlerProcesses(MARKED, 1, 0, 65536)
    try:
        [child] = handler.children
        assert child.pid != early
        assert not Path(f"/proc/{early}").exists()  # ended and reaped, not left running
        assert handler(Item(0, 1, encode("item"))) is None
    finally:
        handler.close()
