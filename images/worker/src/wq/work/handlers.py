"""What a worker does with each item: demo, command or python.

A handler returns the item's output on success (JSON text, or None for none; see wq.work.outputs)
and raises HandlerFailed (or any exception) on failure.
"""

import contextlib
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import IO, Protocol

from wq.base.errors import ConfigError
from wq.base.item import Item
from wq.base.options import DEFAULT_MAX_OUTPUT_BYTES, HANDLERS, WorkerConfig
from wq.work import handler_process
from wq.work.child import load_function
from wq.work.handler_process import handler_environment
from wq.work.outcome import HandlerFailed
from wq.work.outputs import json_output, read_limited, text_output, too_big
from wq.work.supervisor import HandlerProcesses

# The demo handler's lines for items that take no time: written together, up to this many
# characters, at least this often (while items come).
WRITE_CHARS = 1024
WRITE_EVERY_S = 0.05
# Where a command writes its item's output (a path in a fresh directory per item).
OUTPUT_ENV = "WQ_OUTPUT"


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


class CommandHandler:
    """Runs a command per item. Each argument is a sandboxed Jinja2 template (`{{ item }}`,
    `{{ item.src }}`; see command_template: item text never runs as code); the item is also in
    $WQ_ITEM. No shell unless asked for. The exit code decides success; output is streamed
    with the item named; a timeout kills the process group. The item's output is the file the
    command writes at $WQ_OUTPUT (in a directory of its own, removed afterwards) or, with
    capture_stdout, its standard output.
    """

    enforces_own_timeout = True

    def __init__(
        self,
        args: Sequence[str],
        shell: bool,
        timeout_s: float,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        capture_stdout: bool = False,
    ) -> None:
        if not args:
            raise ConfigError(
                "command handler needs a command: wq work --handler command -- CMD ARGS... "
                "(or WQ_COMMAND as a JSON list)"
            )
        # Imported here: Jinja2 is for this handler alone, and a worker with another starts
        # without it.
        from wq.work.command_template import CommandTemplate

        self.template: CommandTemplate = CommandTemplate(args, shell)
        self.timeout_s = timeout_s
        self.max_output_bytes = max_output_bytes
        self.capture_stdout = capture_stdout
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def render(self, item: Item) -> list[str]:
        from wq.work.command_template import RenderFailed

        try:
            return self.template.render(item.value)
        except RenderFailed as exc:
            raise HandlerFailed(str(exc)) from None

    def __call__(self, item: Item) -> str | None:
        argv = self.render(item)
        env = item_environment(os.environ, item)
        workdir = None
        if not self.capture_stdout:
            workdir = tempfile.mkdtemp(prefix="wq-item-")  # mode 0700: the item's own
            env[OUTPUT_ENV] = os.path.join(workdir, "output")
        try:
            captured = self._run(argv, env, item)
            if self.capture_stdout:
                return captured
            return self._output_file(env[OUTPUT_ENV])
        finally:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, argv: list[str], env: dict[str, str], item: Item) -> str | None:
        """Runs the command to its end; returns its standard output with capture_stdout."""
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if self.capture_stdout else subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a kill reaches its children
            )
        except OSError as exc:
            raise HandlerFailed(f"cannot run {argv[0]!r}: {exc.strerror}") from None
        with self._lock:
            self._running.add(proc)
        timer = None
        timed_out = threading.Event()
        if self.timeout_s > 0:

            def expire() -> None:
                timed_out.set()
                _kill_group(proc, signal.SIGKILL)

            timer = threading.Timer(self.timeout_s, expire)
            timer.daemon = True
            timer.start()
        tail: deque[str] = deque(maxlen=3)
        prefix = f"[item {item.run_position}] "
        stdout, size = b"", 0
        try:
            assert proc.stdout is not None
            if proc.stderr is not None:  # capture_stdout: log the errors, keep the output
                logger = threading.Thread(
                    target=_stream, args=(proc.stderr, prefix, tail), daemon=True
                )
                logger.start()
                stdout, size = read_limited(proc.stdout, self.max_output_bytes)
                logger.join()
            else:
                _stream(proc.stdout, prefix, tail)
            code = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            if proc.poll() is None:  # interrupted (shutdown): take the whole group down
                _kill_group(proc, signal.SIGKILL)
                proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            with self._lock:
                self._running.discard(proc)
        if timed_out.is_set():
            raise HandlerFailed(f"timed out after {self.timeout_s:g}s (process group killed)")
        if code != 0:
            last = f": {tail[-1]}" if tail else ""
            reason = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            raise HandlerFailed(f"command {reason}{last}")
        if not self.capture_stdout:
            return None
        if size > self.max_output_bytes:
            raise too_big(size, self.max_output_bytes, "the command's standard output")
        return text_output(stdout, self.max_output_bytes, "the command's standard output")

    def _output_file(self, path: str) -> str | None:
        """The file the command wrote at $WQ_OUTPUT, if it wrote one: not followed if it is a
        link, and not read at all if it is too big."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO: no wait
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HandlerFailed(f"${OUTPUT_ENV} cannot be read: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise HandlerFailed(f"${OUTPUT_ENV} is not a regular file")
            size = os.fstat(fd).st_size
            if size > self.max_output_bytes:
                raise too_big(size, self.max_output_bytes, f"${OUTPUT_ENV}")
            data = f.read(self.max_output_bytes + 1)
        return text_output(data, self.max_output_bytes, f"${OUTPUT_ENV}")

    def cancel_all(self) -> None:
        with self._lock:
            running = list(self._running)
        for proc in running:
            _kill_group(proc, signal.SIGTERM)


def _stream(pipe: IO[bytes], prefix: str, tail: "deque[str]") -> None:
    """Copy a command's output lines to ours, each with the item named; keep the last few."""
    for raw in pipe:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        tail.append(line)
        sys.stdout.write(prefix + line + "\n")
    sys.stdout.flush()


def item_environment(environ: Mapping[str, str], item: Item) -> dict[str, str]:
    """The environment of an item's process: the worker's without the Redis credentials
    (wq.work.supervisor.handler_environment), plus the item."""
    env = handler_environment(environ)
    env["WQ_ITEM"] = item.text
    env["WQ_ITEM_POSITION"] = str(item.run_position)
    return env


def _kill_group(proc: "subprocess.Popen[bytes]", sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


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


# A template tag, which may hold spaces: `{{ item.src }}`, `{% if item %}`.
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def split_command_line(line: str) -> tuple[str, ...]:
    """Split a command line like a shell would, keeping each template tag whole, so that
    `curl -fsS {{ item }}` is two words and a template, not five words."""
    tags: list[str] = []

    def hide(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        return f"\x00{len(tags) - 1}\x00"

    try:
        words = shlex.split(_TEMPLATE_TAG.sub(hide, line))
    except ValueError as exc:
        raise ConfigError(f"command line {line!r} cannot be split: {exc}") from None
    return tuple(re.sub("\x00(\\d+)\x00", lambda m: tags[int(m.group(1))], w) for w in words)
