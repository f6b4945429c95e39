"""What a worker does with each item: demo, command (wq.work.command_handler) or python.

A handler returns the item's output on success (JSON text, or None for none; see wq.work.outputs)
and raises HandlerFailed (or any exception) on failure.
"""

import os
import sys
import threading
import time
from typing import Protocol

from wq.base.errors import ConfigError
from wq.base.item import Item
from wq.base.options import DEFAULT_MAX_OUTPUT_BYTES, HANDLERS, WorkerConfig
from wq.work import handler_process
from wq.work.child import load_function
from wq.work.handler_process import handler_environment
from wq.work.outcome import HandlerFailed
from wq.work.outputs import json_output
from wq.work.supervisor import HandlerProcesses

# The demo handler's lines for items that take no time: written together, up to this many
# characters, at least this often (while items come).
WRITE_CHARS = 1024
WRITE_EVERY_S = 0.05


class Handler(Protocol):
    # Whether the item timeout can be enforced when the handler runs in a slot thread.
    enforces_own_timeout: bool

    def __call__(self, item: Item) -> str | None:
        """Process one item; returns its output as JSON text (None: no output)."""

    def cancel_all(self) -> None:
        """Stop whatever is running now (graceful shutdown)."""


class DemoHandler:
    """The Kubernetes docs' example worker: print the item, then sleep. Items that take no time
    have their lines written together, whole lines up to WRITE_CHARS at a time: a write each
    cost more than the rest of an item's work (and a container's log pipeline as much again)."""

    enforces_own_timeout = False

    def __init__(self, sleep_s: float) -> None:
        self.sleep_s = sleep_s
        self.lines: list[str] = []
        self.chars = 0
        self.written_at = time.monotonic()
        self.lock = threading.Lock()  # slot threads (--concurrency) share the lines

    def __call__(self, item: Item) -> None:
        line = f"Working on {item.text}\n"
        if self.sleep_s > 0:
            self._write(line)
            time.sleep(self.sleep_s)
            return
        with self.lock:
            if self.chars + len(line) > WRITE_CHARS:
                self._write_held()
            self.lines.append(line)
            self.chars += len(line)
            if time.monotonic() - self.written_at >= WRITE_EVERY_S:
                self._write_held()

    def flush(self) -> None:
        """Write the lines held back."""
        with self.lock:
            self._write_held()

    def _write_held(self) -> None:
        if self.lines:
            self._write("".join(self.lines))
            self.lines.clear()
            self.chars = 0
        self.written_at = time.monotonic()

    def _write(self, text: str) -> None:
        # One write of whole lines, at most a pipe's atomic write (PIPE_BUF, 4096 bytes: a
        # character is at most 4), so that worker processes sharing a pipe (wq run) never
        # interleave their lines mid-line (print() would write the text and its newline apart).
        sys.stdout.write(text)
        sys.stdout.flush()

    def cancel_all(self) -> None:
        self.flush()


class PythonHandler:
    """Calls MODULE:FUNCTION (importable in the image) with the decoded item, in the worker's
    own process (--python-isolation none; wq.work.supervisor runs it in processes of its
    own); what it returns is the item's output."""

    enforces_own_timeout = False

    def __init__(self, target: str, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        self.func = load_function(target)
        self.max_output_bytes = max_output_bytes

    def __call__(self, item: Item) -> str | None:
        try:
            result = self.func(item.value)
        except SystemExit as exc:
            # The function's way of failing, not the worker's to end: in a slot thread it
            # would end the thread alone, and the worker would wait for its item for ever.
            raise HandlerFailed(f"the function called sys.exit({exc.code!r})") from None
        except KeyboardInterrupt:
            # Raised by the function itself: the worker's own SIGINT is StopRequested.
            raise HandlerFailed("the function raised KeyboardInterrupt") from None
        return None if result is None else json_output(result, self.max_output_bytes)

    def cancel_all(self) -> None:
        pass


def start_early(config: WorkerConfig) -> None:
    """Starts the handler processes that build_handler will want, if it will want any, before
    the worker imports the rest of itself (wq.work.handler_process.start_early says why)."""
    if config.handler == "python" and config.python and config.python_isolation == "process":
        first_frame = handler_process.hello(
            config.python,
            config.concurrency,
            config.max_output_bytes,
            config.python_memory_limit,
        )
        handler_process.start_early(
            config.concurrency, handler_environment(os.environ), first_frame
        )


def build_handler(config: WorkerConfig) -> Handler:
    """The handler a worker's settings describe; a ConfigError for settings that do not fit
    together, so that a bad Job fails at once with exit 2 instead of on every item."""
    name = config.handler
    if config.command and name != "command":
        raise ConfigError(f"a command was given but the handler is {name!r}; add --handler command")
    if config.capture_stdout and name != "command":
        raise ConfigError(
            f"--capture-stdout is for the command handler, and the handler is {name!r}"
        )
    handler: Handler
    if name == "demo":
        handler = DemoHandler(config.demo_sleep)
    elif name == "python":
        if not config.python:
            raise ConfigError("python handler needs --python MODULE:FUNCTION (or WQ_PYTHON)")
        if config.python_isolation == "process":
            handler = HandlerProcesses(
                config.python,
                config.concurrency,
                config.item_timeout_s,
                config.max_output_bytes,
                config.python_memory_limit,
            )
        else:
            handler = PythonHandler(config.python, config.max_output_bytes)
    elif name == "command":
        # Imported only here: a worker that runs no command starts without what it needs.
        from wq.work.command_handler import CommandHandler

        handler = CommandHandler(
            config.command,
            config.shell,
            config.item_timeout_s,
            config.max_output_bytes,
            config.capture_stdout,
        )
    else:
        raise ConfigError(f"unknown handler {name!r}; use one of {', '.join(HANDLERS)}")
    if config.item_timeout_s > 0 and config.concurrency > 1 and not handler.enforces_own_timeout:
        raise ConfigError(
            f"--item-timeout with the {name} handler needs --concurrency 1 "
            "(an in-process call can only be interrupted in the main thread)"
            + ("; or --python-isolation process" if name == "python" else "")
        )
    return handler
