"""Waiting in tests: poll an observable state until it holds, with a deadline.

Never sleep a fixed time and then assert: a loaded machine is slower than any guess, and a
fast one can finish before the sleep ends.
"""

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    what: str | Callable[[], str],
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 0.02,
) -> T:
    """Calls `probe` until it returns something other than None (or False); fails the test
    after `timeout` seconds, naming `what` it waited for (a callable: asked at that moment,
    e.g. to say what the last probe saw)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout:g}s waiting for {described}", pytrace=False)
        time.sleep(interval)
