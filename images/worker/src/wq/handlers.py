"""What a worker does with each item: demo, command or python.

A handler returns normally on success and raises HandlerFailed (or any exception) on failure.
"""

import contextlib
import importlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from wq.command_template import CommandTemplate, RenderFailed
from wq.errors import ConfigError
from wq.item import Item
from wq.options import HANDLERS, ConnectionConfig, WorkerConfig, setting_of

_PASSWORD_ENV = setting_of(ConnectionConfig, "redis_password").env
_URL_ENV = setting_of(ConnectionConfig, "redis_url").env


class HandlerFailed(Exception):
    """An item failed; the message becomes the item's last error."""


class Handler(Protocol):
    # Whether the item timeout can be enforced when the handler runs in a slot thread.
    enforces_own_timeout: bool

    def __call__(self, item: Item) -> None: ...

    def cancel_all(self) -> None:
        """Stop whatever is running now (graceful shutdown)."""


class DemoHandler:
    """The Kubernetes docs' example worker: print the item, then sleep."""

    enforces_own_timeout = False

    def __init__(self, sleep_s: float) -> None:
        self.sleep_s = sleep_s

    def __call__(self, item: Item) -> None:
        # One write per line: print() writes the text and the newline separately, and worker
        # processes sharing a pipe (wq run) would interleave them mid-line.
        sys.stdout.write(f"Working on {item.text}\n")
        sys.stdout.flush()
        if self.sleep_s > 0:
            time.sleep(self.sleep_s)

    def cancel_all(self) -> None:
        pass


class PythonHandler:
    """Calls MODULE:FUNCTION (importable in the image) with the decoded item."""

    enforces_own_timeout = False

    def __init__(self, target: str) -> None:
        self.func = load_function(target)

    def __call__(self, item: Item) -> None:
        self.func(item.value)

    def cancel_all(self) -> None:
        pass


def load_function(target: str) -> Callable[[Any], object]:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"python handler {target!r} is not MODULE:FUNCTION")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"python handler {target!r}: cannot import {module_name!r}: {exc}"
        ) from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise ConfigError(f"python handler {target!r}: {module_name} has no function {attr!r}")
    return func  # type: ignore[no-any-return]


class CommandHandler:
    """Runs a command per item. Each argument is a sandboxed Jinja2 template (`{{ item }}`,
    `{{ item.src }}`; see command_template: item text never runs as code); the item is also in
    $WQ_ITEM. No shell unless asked for. The exit code decides success; output is streamed
    with the item named; a timeout kills the process group.
    """

    enforces_own_timeout = True

    def __init__(self, args: Sequence[str], shell: bool, timeout_s: float) -> None:
        if not args:
            raise ConfigError(
                "command handler needs a command: wq work --handler command -- CMD ARGS... "
                "(or WQ_COMMAND as a JSON list)"
            )
        self.template = CommandTemplate(args, shell)
        self.timeout_s = timeout_s
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def render(self, item: Item) -> list[str]:
        try:
            return self.template.render(item.value)
        except RenderFailed as exc:
            raise HandlerFailed(str(exc)) from None

    def __call__(self, item: Item) -> None:
        argv = self.render(item)
        env = item_environment(os.environ, item)
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
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
        try:
            assert proc.stdout is not None
            prefix = f"[item {item.position}] "
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                tail.append(line)
                sys.stdout.write(prefix + line + "\n")
            sys.stdout.flush()
            code = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            if proc.poll() is None:  # interrupted (shutdown): take the whole group down
                _kill_group(proc, signal.SIGKILL)
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            with self._lock:
                self._running.discard(proc)
        if timed_out.is_set():
            raise HandlerFailed(f"timed out after {self.timeout_s:g}s (process group killed)")
        if code != 0:
            last = f": {tail[-1]}" if tail else ""
            reason = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            raise HandlerFailed(f"command {reason}{last}")

    def cancel_all(self) -> None:
        with self._lock:
            running = list(self._running)
        for proc in running:
            _kill_group(proc, signal.SIGTERM)


def item_environment(environ: Mapping[str, str], item: Item) -> dict[str, str]:
    """The environment of an item's process: the worker's without the Redis credentials, plus
    the item. What runs per item may be fed hostile items and needs no Redis: it gets neither
    WQ_REDIS_PASSWORD nor a WQ_REDIS_URL that holds a password (a URL without one, which only
    says where Redis is, stays; a redacted one would be a wrong password, so it goes)."""
    env = dict(environ)
    env.pop(_PASSWORD_ENV, None)
    if urlsplit(env.get(_URL_ENV, "")).password is not None:
        del env[_URL_ENV]
    env["WQ_ITEM"] = item.text
    env["WQ_ITEM_POSITION"] = str(item.position)
    return env


def _kill_group(proc: "subprocess.Popen[bytes]", sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def build_handler(config: WorkerConfig) -> Handler:
    """The handler a worker's settings describe; a ConfigError for settings that do not fit
    together, so that a bad Job fails at once with exit 2 instead of on every item."""
    name = config.handler
    if config.command and name != "command":
        raise ConfigError(f"a command was given but the handler is {name!r}; add --handler command")
    handler: Handler
    if name == "demo":
        handler = DemoHandler(config.demo_sleep)
    elif name == "python":
        if not config.python:
            raise ConfigError("python handler needs --python MODULE:FUNCTION (or WQ_PYTHON)")
        handler = PythonHandler(config.python)
    elif name == "command":
        handler = CommandHandler(config.command, config.shell, config.item_timeout_s)
    else:
        raise ConfigError(f"unknown handler {name!r}; use one of {', '.join(HANDLERS)}")
    if config.item_timeout_s > 0 and config.concurrency > 1 and not handler.enforces_own_timeout:
        raise ConfigError(
            f"--item-timeout with the {name} handler needs --concurrency 1 "
            "(an in-process call can only be interrupted in the main thread)"
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
