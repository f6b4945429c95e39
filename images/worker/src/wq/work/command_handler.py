"""The command handler: a process per item, its arguments templates of the item's data.

Apart from the other handlers so that a worker that runs no command starts without what only
a command needs (temporary directories, shell-like splitting).
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
from collections import deque
from collections.abc import Mapping, Sequence
from typing import IO

from wq.base.errors import ConfigError
from wq.base.item import Item
from wq.base.options import DEFAULT_MAX_OUTPUT_BYTES
from wq.work.handler_process import handler_environment
from wq.work.outcome import HandlerFailed
from wq.work.outputs import read_limited, text_output, too_big

# Where a command writes its item's output (a path in a fresh directory per item).
OUTPUT_ENV = "WQ_OUTPUT"


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
