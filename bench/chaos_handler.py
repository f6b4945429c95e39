"""The handler `make chaos` runs: 20-50 ms per item, each start and end logged with the time,
in one file per worker process (so a SIGKILL loses nothing already written)."""

import os
import time
import zlib
from pathlib import Path
from typing import Any

# The worker's pid, which `make chaos` kills: the python handler runs in a process of its own,
# the worker's child (in the worker's own process with --python-isolation none).
_WORKER = os.getpid() if os.environ.get("WQ_PYTHON_ISOLATION") == "none" else os.getppid()


def _log(event: str, value: Any) -> None:
    path = Path(os.environ["WQ_CHAOS_DIR"]) / f"{_WORKER}.log"
    with path.open("a") as f:
        f.write(f"{event} {value} {time.time():.6f}\n")


def work(value: Any) -> None:
    _log("start", value)
    time.sleep((20 + zlib.crc32(str(value).encode()) % 31) / 1000)
    _log("end", value)
