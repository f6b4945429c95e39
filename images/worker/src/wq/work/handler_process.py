"""One python handler process (wq.work.child) as the worker sees it: started in a session of its
own, the frames to and from it, its progress page, and why it died."""

import contextlib
import fcntl
import json
import mmap
import os
import select
import signal
import subprocess
import sys
import time
from array import array
from collections import deque
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from wq.base.errors import ConfigError
from wq.base.item import Item
from wq.base.options import ConnectionConfig
from wq.base.settings import setting_of
from wq.work.child import (
    DONE,
    DONE_ALL,
    DURATION_TYPE,
    PROGRESS,
    READY,
    REFUSED,
    TO_CHILD,
    TO_WORKER,
    write_all,
)
from wq.work.memory_limit import per_process
from wq.work.outcome import Ended, Outcome, Ran

_PASSWORD_ENV = setting_of(ConnectionConfig, "redis_password").env
_URL_ENV = setting_of(ConnectionConfig, "redis_url").env
# Longest a handler process may take to start and import the function.
START_TIMEOUT_S = 300.0
# The container's count of out-of-memory kills: cgroup v2, then v1.
OOM_COUNTERS = (
    Path("/sys/fs/cgroup/memory.events"),
    Path("/sys/fs/cgroup/memory/memory.oom_control"),
)


def handler_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of what runs items: the worker's without the Redis credentials. What
    runs per item may be fed hostile items and needs no Redis: it gets neither
    WQ_REDIS_PASSWORD nor a WQ_REDIS_URL that holds a password (a URL without one, which only
    says where Redis is, stays; a redacted one would be a wrong password, so it goes)."""
    env = dict(environ)
    env.pop(_PASSWORD_ENV, None)
    if urlsplit(env.get(_URL_ENV, "")).password is not None:
        del env[_URL_ENV]
    return env


def oom_kills() -> tuple[str, int] | None:
    """(file, count) of the container's out-of-memory kills so far; None if unreadable."""
    for path in OOM_COUNTERS:
        with contextlib.suppress(OSError, ValueError):
            for line in path.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return path.name, int(value)
    return None


def death_reason(code: int, oom: tuple[str, int] | None) -> str:
    """Why a handler process ended, from its exit status (negative: the signal that killed
    it) and the container's out-of-memory kills before it (oom_kills())."""
    if code >= 0:
        return f"the handler process exited with status {code} (os._exit, or exit() in C code)"
    number = -code
    name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
    if number == signal.SIGKILL:
        now = oom_kills()
        if now is not None and oom is not None and now[1] > oom[1]:
            return (
                f"the handler process ran out of memory (SIGKILL; the container's {now[0]} "
                "oom_kill went up)"
            )
    return f"the handler process was killed by {name}"


class Spawned(NamedTuple):
    """A handler process started: its interpreter starts while the worker goes on, and it
    imports nothing of the user's until its first frame (wq.work.child) says what."""

    proc: "subprocess.Popen[bytes]"
    to_child: int
    from_child: int
    progress: memoryview


def spawn(env: Mapping[str, str]) -> Spawned:
    progress_fd = os.memfd_create("wq-handler-progress")
    os.ftruncate(progress_fd, PROGRESS.size)
    progress = memoryview(mmap.mmap(progress_fd, PROGRESS.size)).cast("q")
    down_r, to_child = os.pipe()
    from_child, up_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "wq.work.child"),
                *(str(fd) for fd in (down_r, up_w, progress_fd, os.getpid())),
            ],
            pass_fds=(down_r, up_w, progress_fd),
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a kill of its process group is not the worker's
        )
    finally:
        for fd in (down_r, up_w, progress_fd):
            os.close(fd)
    return Spawned(proc, to_child, from_child, progress)


# Handler processes started before the worker imported the rest of itself (start_early), with
# the environment and first frame each was given; the first Child objects take them, in turn.
_early: list[tuple[dict[str, str], bytes, Spawned]] = []


def start_early(count: int, env: Mapping[str, str], first_frame: bytes) -> None:
    """Starts `count` handler processes now and sends each its first frame (hello()), for the
    first Child objects to take: a Python interpreter takes tens of milliseconds to start, and
    the handler's module as long as it takes to import, which then pass while the worker
    imports redis-py and the store, rather than after, before its first lease. One that is
    never taken reads its end of file when the worker exits, and exits too."""
    for _ in range(count):
        spawned = spawn(env)
        write_all(spawned.to_child, TO_CHILD.pack(len(first_frame)) + first_frame)
        _early.append((dict(env), first_frame, spawned))


def _take_early(env: Mapping[str, str], first_frame: bytes) -> Spawned | None:
    """A process started early with this environment and first frame, if one is left."""
    while _early:
        early_env, early_frame, spawned = _early.pop(0)
        if (early_env, early_frame) == (env, first_frame):
            return spawned
        # Started for other settings, never given an item: ended, its process group with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(spawned.proc.pid, signal.SIGKILL)
        spawned.proc.wait()
        for fd in (spawned.to_child, spawned.from_child):
            os.close(fd)
        spawned.progress.release()
    return None


class Chunk(NamedTuple):
    """Items of one lease token given to a handler process together, in order."""

    token: str
    items: list[Item]


class Child:
    """One handler process: its pipes, its progress page, and the items it was given that it
    has not answered, in order, a chunk per lease token as they were given."""

    def __init__(self, target: str, hello: bytes, env: Mapping[str, str]) -> None:
        """Starts it and sends it what to import (or takes one started early, sent that
        already); ready() waits until it has imported the function."""
        self.target = target
        early = _take_early(env, hello)
        spawned = early or spawn(env)
        self.proc, self.to_child, self.from_child, self.progress = spawned
        # Items by lease token, in order, as given: `sent` were written to it (those of the
        # first from `first` on not answered yet), `pending` not yet.
        self.sent: deque[Chunk] = deque()
        self.first = 0
        self.unanswered = 0  # items in `sent` from `first` on
        self.pending: list[Chunk] = []
        self.unsent = 0  # items in `pending`
        self.answered = 0  # items answered since it started
        self.unwritten = bytearray()  # frames the pipe had no room for yet
        self.received = bytearray()
        if early is None:
            self.write(TO_CHILD.pack(len(hello)) + hello)
        for fd in (self.to_child, self.from_child):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)

    def ready(self) -> None:
        """Waits until it has imported the function; a ConfigError if it cannot."""
        target = self.target
        deadline = time.monotonic() + START_TIMEOUT_S
        size = TO_WORKER.size
        while len(self.received) < size or len(self.received) < size + self._next_size():
            self.flush()
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.from_child], [], [], left)
            if not ready or self.read() is False:
                code = self.kill()
                self.close()
                how = death_reason(code, None) if ready else f"it did not start in {left:g} s"
                raise ConfigError(f"python handler {target!r} cannot be loaded: {how}")
        n, kind, _ = TO_WORKER.unpack_from(self.received)
        if kind == REFUSED:
            reason = self.received[size : size + n].decode()
            self.kill()
            self.close()
            raise ConfigError(reason)
        assert kind == READY, kind
        del self.received[: size + n]

    def _next_size(self) -> int:
        return int(TO_WORKER.unpack_from(self.received)[0])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def write(self, data: bytes) -> None:
        self.unwritten += data
        self.flush()

    def flush(self) -> None:
        if not self.unwritten:
            return
        try:
            written = os.write(self.to_child, self.unwritten)
        except BlockingIOError:
            return
        except BrokenPipeError:  # dead: its end of file says so
            written = len(self.unwritten)
        del self.unwritten[:written]

    def queued(self) -> int:
        """Items given to it and not answered yet."""
        return self.unanswered + self.unsent

    def give(self, token: str, items: list[Item]) -> None:
        """Items for it to run after those it has; written by send_pending."""
        if items:
            self.pending.append(Chunk(token, items))
            self.unsent += len(items)

    def send_pending(self) -> None:
        """The items not yet written, in one frame (wq.work.child)."""
        texts = "\n".join([item.raw for chunk in self.pending for item in chunk.items]).encode()
        self.sent.extend(self.pending)
        self.unanswered += self.unsent
        self.pending, self.unsent = [], 0
        self.write(TO_CHILD.pack(len(texts)) + texts)

    def item_at(self, index: int) -> tuple[str, Item]:
        """The token and item `index` places after the first it has not answered."""
        index += self.first
        for token, items in self.sent:
            if index < len(items):
                return token, items[index]
            index -= len(items)
        raise IndexError(index)

    def leftovers(self, skip: int | None = None) -> list[Chunk]:
        """What it was given and did not answer, in order, but the item `skip` places after
        the first it has not answered: for a successor to run."""
        chunks = [*self.sent, *self.pending]
        if chunks:
            chunks[0] = Chunk(chunks[0].token, chunks[0].items[self.first :])
        if skip is not None:
            for k, (token, items) in enumerate(chunks):
                if skip < len(items):
                    chunks[k] = Chunk(token, items[:skip] + items[skip + 1 :])
                    break
                skip -= len(items)
        return chunks

    def _answered(self, count: int) -> list[Chunk]:
        """The next `count` items it was sent, now answered, as chunks."""
        taken: list[Chunk] = []
        left = count
        while left:
            token, items = self.sent[0]
            start = self.first
            end = min(len(items), start + left)
            taken.append(
                Chunk(token, items if start == 0 and end == len(items) else items[start:end])
            )
            left -= end - start
            if end == len(items):
                self.sent.popleft()
                self.first = 0
            else:
                self.first = end
        self.unanswered -= count
        self.answered += count
        return taken

    def read(self) -> bool | None:
        """Takes what the process wrote: False at its end (it died), None if nothing came."""
        try:
            data = os.read(self.from_child, 1 << 16)
        except BlockingIOError:
            return None
        self.received += data
        return bool(data)

    def answers(self, out: list[Ended]) -> None:
        """Turns the whole frames received into outcomes: a Ran per lease token of a run of
        successes without output, an Outcome for any other item."""
        buf, pos, size = self.received, 0, TO_WORKER.size
        while len(buf) - pos >= size and self.unanswered:
            n, kind, duration_ns = TO_WORKER.unpack_from(buf, pos)
            end = pos + size + n
            if end > len(buf):
                break
            if kind == DONE_ALL:
                durations = array(DURATION_TYPE, buf[pos + size : end])
                at = 0
                for token, items in self._answered(len(durations)):
                    out.append(Ran(token, items, durations[at : at + len(items)]))
                    at += len(items)
            else:
                [(token, [item])] = self._answered(1)
                text = buf[pos + size : end].decode() if n else None
                if kind == DONE:
                    out.append(Outcome(token, item, None, duration_ns, text))
                else:
                    out.append(Outcome(token, item, text or "failed", duration_ns))
            pos = end
        if pos:
            del buf[:pos]

    def running_since(self) -> int | None:
        """When the item it is running began (time.monotonic_ns); None if it runs none."""
        begun = self.progress[0]
        started = self.progress[1]
        return started if begun > self.answered and self.unanswered else None

    def running(self) -> int | None:
        """Where in the queue the item it was running is (its answer did not come)."""
        index = self.progress[0] - 1 - self.answered
        return index if 0 <= index < self.unanswered else None

    def kill(self) -> int:
        """Kills its whole process group; returns its exit status (negative: a signal)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait()
        while self.read():  # what it wrote before it died
            pass
        return code

    def end_input(self) -> None:
        """No more items: it reads its end of file and exits."""
        with contextlib.suppress(OSError):
            os.close(self.to_child)
        self.to_child = -1

    def close(self) -> None:
        for fd in (self.to_child, self.from_child):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.to_child = self.from_child = -1
        self.progress.release()


def hello(target: str, processes: int, max_output_bytes: int, memory_limit_mib: int) -> bytes:
    """The first frame each of `processes` handler processes is sent: what to import and from
    where, and the memory it may hold (--python-memory-limit, wq.work.memory_limit). The same
    for the same settings, however long after: the processes started early are told what the
    handler later expects of them, the share of memory reckoned once."""
    return _hello(target, processes, max_output_bytes, memory_limit_mib, tuple(sys.path))


@cache
def _hello(
    target: str, processes: int, max_output_bytes: int, memory_limit_mib: int, path: tuple[str, ...]
) -> bytes:
    return json.dumps(
        {
            "target": target,
            "path": path,
            "max_output_bytes": max_output_bytes,
            "memory_limit": per_process(memory_limit_mib, processes),
        }
    ).encode()
