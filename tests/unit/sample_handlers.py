"""Handlers for tests, imported by workers as `tests.unit.sample_handlers:NAME`.

Each execution is appended to a file per worker process under $WQ_TEST_LOG_DIR, so a test can
count how many times every item really ran, across processes that were killed."""

import gc
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

# The worker's pid: the python handler runs in a process of its own, the worker's child (in
# the worker's own process with --python-isolation none).
_WORKER = os.getpid() if os.environ.get("WQ_PYTHON_ISOLATION") == "none" else os.getppid()


def _log(value: Any) -> None:
    directory = os.environ.get("WQ_TEST_LOG_DIR")
    if directory:
        with (Path(directory) / f"{_WORKER}.log").open("a") as f:
            f.write(f"{value}\n")


received: list[Any] = []


def remember(value: Any) -> None:
    """Keep the value in `received`, for tests that call a handler in process."""
    received.append(value)


def record(value: Any) -> None:
    """Sleep WQ_TEST_SLEEP seconds (default 0), then record the execution. With
    WQ_TEST_LOG_STARTS set, also record `start:VALUE` before sleeping."""
    if os.environ.get("WQ_TEST_LOG_STARTS"):
        _log(f"start:{value}")
    time.sleep(float(os.environ.get("WQ_TEST_SLEEP", "0")))
    _log(value)


def killer(value: Any) -> None:
    """Like `record`, but the item WQ_TEST_KILLER kills its own process (SIGKILL) each time it
    runs: its worker's with --python-isolation none, as an item that makes its pod run out of
    memory does where the kernel kills the whole container (cgroup v2's memory.oom.group)."""
    if str(value) == os.environ.get("WQ_TEST_KILLER"):
        once = os.environ.get("WQ_TEST_KILL_ONCE")  # a marker file: kill only the first time
        if not once or not Path(once).exists():
            if once:
                Path(once).touch()
            _log(f"start:{value}")
            os.kill(os.getpid(), signal.SIGKILL)
    record(value)


def fail_on_poison(value: Any) -> None:
    if value == "poison":
        raise ValueError(f"cannot digest {value}")
    _log(value)


def slow_with_poison(value: Any) -> Any:
    """Sleep WQ_TEST_SLEEP seconds (default 0); an item that starts with "poison" fails (with
    markup in its error), any other gets its length as output."""
    time.sleep(float(os.environ.get("WQ_TEST_SLEEP", "0")))
    if str(value).startswith("poison"):
        raise ValueError(f"cannot digest <i>{value}</i>")
    return {"length": len(str(value))}


def executions(directory: Path, starts: bool = False) -> list[str]:
    """Every recorded execution (finished ones; with `starts`, the `start:` lines instead)."""
    lines: list[str] = []
    for f in sorted(directory.glob("*.log")):
        lines.extend(f.read_text().splitlines())
    return [line for line in lines if line.startswith("start:") == starts]


def exits(value: Any) -> str:
    """Calls sys.exit for the item "exit", raises KeyboardInterrupt for "interrupt": what a
    script turned into a handler may do. Returns other items."""
    if value == "exit":
        sys.exit(7)
    if value == "interrupt":
        raise KeyboardInterrupt
    return str(value)


def double_but_7s(value: int) -> int:
    """Twice the number as output; a number ending in 007 (7, 1007, ...) fails."""
    if value % 1000 == 7:
        raise ValueError(f"{value} ends in 007")
    _log(value)
    return value * 2


def every_fifth_answers(value: int) -> int | None:
    """Output for numbers ending in 1 or 6, a failure for those ending in 3 or 8, no output
    for the rest: the three answers a handler process gives, mixed."""
    if value % 5 == 1:
        return value
    if value % 5 == 3:
        raise ValueError(f"{value} fails")
    return None


def collector_state(value: Any) -> list[int]:
    """The garbage collector of the process the function runs in: its youngest generation's
    threshold, and how many objects are frozen."""
    return [gc.get_threshold()[0], gc.get_freeze_count()]
