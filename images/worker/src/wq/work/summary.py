"""What a worker did, said once as it exits: a log event, and one line in the container's
termination message file, which `kubectl describe pod` shows under the container's state.
"""

import os
from dataclasses import dataclass
from typing import Any

from wq.base.status import format_duration

# Kubernetes keeps at most 4096 bytes of a termination message.
MAX_MESSAGE_BYTES = 4096

REASONS = {
    "drained": "drained",
    "dead_items": "drained with dead items",
    "stopped": "stopped",
    "lost": "lost its run (its keys are gone)",
}


@dataclass(frozen=True)
class WorkerSummary:
    worker: str
    run: str
    reason: str  # a key of REASONS
    exit_code: int
    processed: int  # items this worker recorded done
    failed: int  # attempts whose handler failed (retried or dead)
    attempts: int  # attempts whose handler finished, done or failed
    busy_s: float  # handler time of those attempts
    seconds: float  # since the worker started

    @property
    def mean_item_s(self) -> float | None:
        return self.busy_s / self.attempts if self.attempts else None

    def fields(self) -> dict[str, Any]:
        """The log event's fields."""
        mean = self.mean_item_s
        return {
            "reason": self.reason,
            "exit_code": self.exit_code,
            "processed": self.processed,
            "failed": self.failed,
            "mean_item_s": round(mean, 6) if mean is not None else None,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        """One line for people: the termination message."""
        mean = self.mean_item_s
        return (
            f"worker {self.worker} of run {self.run} {REASONS[self.reason]} (exit "
            f"{self.exit_code}): {self.processed} item(s) processed, {self.failed} failed "
            f"attempt(s), mean item time {f'{mean:.3f}s' if mean is not None else '-'}, "
            f"ran {format_duration(self.seconds)}"
        )


def write_termination_message(path: str, line: str) -> bool:
    """Replace the file's content with `line`; False, quietly, if it cannot be written. The file
    is never created: Kubernetes provides it in each container (outside one, the default path
    does not exist, and a worker run by root must not leave a file in /dev)."""
    if not path:
        return False
    data = (line + "\n").encode()[:MAX_MESSAGE_BYTES]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except OSError:
        return False
    try:
        os.write(fd, data)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True
