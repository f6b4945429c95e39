"""How much memory a python handler process may hold: so that an item that eats memory fails
with MemoryError in its own process, before the kernel's out-of-memory killer takes the
container. With cgroup v2 (Kubernetes 1.28 and later set memory.oom.group) that killer ends
every process of the container, the worker too, whichever process ran it out of memory."""

import contextlib
import os
from pathlib import Path

MIB = 1 << 20
# The container's memory limit: cgroup v2, then v1 (whose "no limit" is a huge number).
LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
# Kept for the worker beyond what it holds as the processes start (its batches and replies).
WORKER_MARGIN = 32 * MIB
# What a worker holds once it has imported itself (33 MiB measured, redis-py and the store
# loaded): counted at least, as the share is reckoned as the first handler processes start
# (wq.work.handler_process.start_early), before those imports.
LOADED_WORKER = 40 * MIB
# Below this a process would hardly start Python: then no limit is set.
SMALLEST = 48 * MIB


def container_limit() -> int | None:
    """The container's memory limit in bytes, or None (none, or none that can be read)."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in LIMIT_FILES:
        with contextlib.suppress(OSError, ValueError):
            text = path.read_text().strip()
            if text == "max":
                return None
            limit = int(text)
            return limit if limit < physical else None
    return None


def worker_holds() -> int:
    """The worker's resident memory, in bytes."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    return 0


def per_process(setting_mib: int, processes: int) -> int | None:
    """Bytes each of `processes` handler processes may hold (None: no limit), from
    --python-memory-limit: MiB; 0 for a share of the container's limit; -1 for none."""
    if setting_mib > 0:
        return setting_mib * MIB
    limit = container_limit() if setting_mib == 0 else None
    if limit is None:
        return None
    worker = max(worker_holds(), LOADED_WORKER)
    share = (limit - worker - WORKER_MARGIN) // max(1, processes)
    return share if share >= SMALLEST else None
