"""A python handler whose poison items take its process down, each in another way:
`poison:handle` (or `tests.poison:handle`) with a module path to this file. Any other item is
done at once (or after POISON_SLEEP_S seconds). Used by the unit tests of the handler's
isolation and by the e2e run, where a ConfigMap puts this file on the worker pods'
PYTHONPATH; so it imports nothing of wq or tests.

With WQ_TEST_LOG_DIR set, each poison item writes `<item> <pid>` to a file there as it starts.
"""

import ctypes
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

# Each poison item, and the reason its attempts fail with (the start of it).
REASONS = {
    "allocate": "the handler process ran out of memory",  # under a container memory limit
    "sigkill": "the handler process was killed by SIGKILL",
    "segfault": "the handler process was killed by SIGSEGV",
    "exit": "the handler process exited with status 3",
    "hang": "the handler process did not finish within the item timeout",
    "killpg": "the handler process was killed by SIGKILL",
    "memoryerror": "MemoryError",  # an exception like any other: the process lives on
}


def handle(item: Any) -> object:
    if item not in REASONS:
        # Items that take some time, as real ones do (POISON_SLEEP_S): without, a run's time is
        # its start-up's, and what poison costs it is only its item timeouts.
        time.sleep(float(os.environ.get("POISON_SLEEP_S", "0")))
        return None
    directory = os.environ.get("WQ_TEST_LOG_DIR")
    if directory:
        with (Path(directory) / "poison.log").open("a") as f:
            f.write(f"{item} {os.getpid()}\n")
    if item == "allocate":
        hoard = []
        while True:  # pages touched, so they count against the memory limit
            hoard.append(bytearray(16 << 20))
    if item == "sigkill":  # what the kernel's out-of-memory killer does
        os.kill(os.getpid(), signal.SIGKILL)
    if item == "segfault":
        ctypes.string_at(0)
    if item == "exit":
        os._exit(3)
    if item == "hang":
        time.sleep(3600)
    if item == "killpg":
        os.killpg(0, signal.SIGKILL)
    if item == "memoryerror":
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (_address_space() + (256 << 20), hard))
        try:
            return bytearray(1 << 30)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    raise AssertionError(item)


def _address_space() -> int:
    """This process's virtual memory size now, in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
