"""Handlers for tests, imported by workers as `tests.unit.sample_handlers:NAME`.

Each execution is appended to a per-process file under $WQ_TEST_LOG_DIR, so a test can count
how many times every item really ran, across processes that were killed."""

import os
import time
from pathlib import Path
from typing import Any


def _log(value: Any) -> None:
    directory = os.environ.get("WQ_TEST_LOG_DIR")
    if directory:
        with (Path(directory) / f"{os.getpid()}.log").open("a") as f:
            f.write(f"{value}\n")


received: list[Any] = []


def remember(value: Any) -> None:
    """Keep the value in `received`, for tests that call a handler in process."""
    received.append(value)


def record(value: Any) -> None:
    """Sleep WQ_TEST_SLEEP seconds (default 0), then record the execution."""
    time.sleep(float(os.environ.get("WQ_TEST_SLEEP", "0")))
    _log(value)


def fail_on_poison(value: Any) -> None:
    if value == "poison":
        raise ValueError(f"cannot digest {value}")
    _log(value)


def executions(directory: Path) -> list[str]:
    lines: list[str] = []
    for f in sorted(directory.glob("*.log")):
        lines.extend(f.read_text().splitlines())
    return lines
