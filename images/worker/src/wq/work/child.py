"""The python handler's own process (`python -m wq.work.child IN OUT PROGRESS WORKER_PID`),
started and watched by wq.work.supervisor: it imports MODULE:FUNCTION once, then calls it on
every item it is sent, in order. Whatever the function does to this process (runs it out of
memory, crashes it, exits, hangs, kills its process group) costs the item, never the worker.

Frames over two pipes, each a fixed header and a payload, nothing else:
  worker -> child  the first frame: JSON {"target", "path" (the worker's sys.path),
                   "max_output_bytes"}; then frames of items: their JSON texts joined by
                   newlines (JSON text never holds a raw newline; items are untrusted data:
                   they are only ever decoded as JSON)
  child -> worker  READY, or REFUSED with the one-line reason the function cannot be loaded;
                   then the items' answers, in order: DONE (payload: the output's JSON text)
                   or FAILED (payload: the error), with the call's duration; or, for a run of
                   items that succeeded with no output (most items), one DONE_ALL whose
                   payload is their durations (8 bytes each): no frame per item each side

Answers are written together, once ANSWER_EVERY_NS has passed or when the items sent so far
are all answered; so that the worker knows which item was running should this process die,
a shared page (PROGRESS_FD, a memfd) holds the count of items begun and when the last began.

Kept light: it imports no more of wq than the output check needs.
"""

import contextlib
import importlib
import json
import mmap
import os
import resource
import signal
import struct
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

from wq.base.errors import ConfigError
from wq.work.outputs import json_output

# worker -> child: payload length.
TO_CHILD = struct.Struct("<I")
# child -> worker: payload length, kind, duration in nanoseconds.
TO_WORKER = struct.Struct("<IBQ")
READY, REFUSED, DONE, FAILED, DONE_ALL = range(5)
# DONE_ALL's payload: each item's duration in nanoseconds.
DURATION_TYPE = "q"
# The shared progress page: items begun, and when the last one began (time.monotonic_ns).
PROGRESS = struct.Struct("<qq")
ANSWER_EVERY_NS = 1_000_000
PR_SET_PDEATHSIG = 1  # prctl(2)


def load_function(target: str) -> Callable[[Any], object]:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"python handler {target!r} is not MODULE:FUNCTION")
    where = f"python handler {target!r}: cannot import {module_name!r}"
    # Importing runs the module's code, which is the user's: whatever it raises (or exits
    # with) at import is a handler that cannot start, exit 2, and never a traceback.
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except SyntaxError as exc:
        at = f" ({exc.filename}, line {exc.lineno})" if exc.filename else ""
        raise ConfigError(f"{where}: syntax error{at}: {exc.msg}") from None
    except SystemExit as exc:
        raise ConfigError(f"{where}: it called sys.exit({exc.code!r}) as it was imported") from None
    except Exception as exc:
        raise ConfigError(f"{where}: {type(exc).__name__}: {exc}") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise ConfigError(f"python handler {target!r}: {module_name} has no function {attr!r}")
    return func  # type: ignore[no-any-return]


def serve(in_fd: int, out_fd: int, progress: "memoryview") -> int:
    incoming = bytearray()
    hello = _next_frame(in_fd, incoming)
    if hello is None:
        return 0
    settings = json.loads(hello)
    sys.path[:] = settings["path"]  # what the worker could import, this process can
    memory_limit = settings["memory_limit"]
    out_of_memory = "MemoryError"
    if memory_limit is not None:
        # The import too: a module that loads more than its share fails here, at start.
        resource.setrlimit(resource.RLIMIT_DATA, (memory_limit, memory_limit))
        out_of_memory = (
            "the handler process ran out of memory (MemoryError at its limit of "
            f"{memory_limit >> 20} MiB, --python-memory-limit)"
        )
    try:
        func = load_function(settings["target"])
    except ConfigError as exc:
        write_all(out_fd, TO_WORKER.pack(len(str(exc).encode()), REFUSED, 0) + str(exc).encode())
        return 2
    limit = int(settings["max_output_bytes"])
    write_all(out_fd, TO_WORKER.pack(0, READY, 0))
    clock, pack, header = time.monotonic_ns, TO_WORKER.pack, TO_CHILD.size
    decoder = item_decoder()
    begun = 0
    answers = bytearray()
    # The latest items' durations, all successes with no output: answered as one DONE_ALL,
    # after what `answers` holds.
    ran = array(DURATION_TYPE)
    answered_at = clock()
    while True:
        pos = 0
        end = len(incoming)
        while end - pos >= header:
            (size,) = TO_CHILD.unpack_from(incoming, pos)
            if end - pos - header < size:
                break
            payload = incoming[pos + header : pos + header + size]
            pos += header + size
            read = int if natural_numbers(payload) else decoder
            # Each item's start is the end of the one before: one clock read an item.
            started = clock()
            for text in payload.decode().split("\n"):
                begun += 1
                progress[1] = started  # first: the worker reads the count, then the time
                progress[0] = begun
                try:
                    result = func(read(text))
                    output = None if result is None else json_output(result, limit)
                except SystemExit as exc:  # the function's way of failing: its item fails
                    error = f"the function called sys.exit({exc.code!r})"
                except KeyboardInterrupt:
                    error = "the function raised KeyboardInterrupt"
                except MemoryError as exc:
                    error = str(exc) or out_of_memory
                except BaseException as exc:
                    error = str(exc) or type(exc).__name__
                else:
                    ended = clock()
                    if output:
                        _close_run(answers, ran)
                        data = output.encode()
                        answers += pack(len(data), DONE, ended - started)
                        answers += data
                    else:
                        ran.append(ended - started)
                    if ended - answered_at >= ANSWER_EVERY_NS:
                        _answer(out_fd, answers, ran)
                        ended = answered_at = clock()
                    started = ended
                    continue
                ended = clock()
                _close_run(answers, ran)
                data = error.encode("utf-8", "replace")
                answers += pack(len(data), FAILED, ended - started)
                answers += data
                if ended - answered_at >= ANSWER_EVERY_NS:
                    _answer(out_fd, answers, ran)
                    ended = answered_at = clock()
                started = ended
        del incoming[:pos]
        _answer(out_fd, answers, ran)  # all answered: nothing is kept waiting while we wait
        answered_at = clock()
        chunk = os.read(in_fd, 1 << 16)
        if not chunk:
            return 0  # the worker is done with us
        incoming += chunk


def natural_numbers(payload: bytearray) -> bool:
    """Whether every item of a frame is a JSON text of ASCII digits alone: a natural number
    (JSON has no leading zeros), which int() reads five times faster than the JSON decoder;
    checked for the whole frame at once (most frames are a range run's)."""
    return (
        bool(payload)
        and not payload.translate(None, b"0123456789\n")
        and payload[:1] != b"\n"
        and payload[-1:] != b"\n"
        and b"\n\n" not in payload
    )


def item_decoder() -> Callable[[str], Any]:
    """An item's value from its JSON text: items are JSON text, never anything else."""
    decode = json.JSONDecoder().decode

    def decoded(text: str) -> Any:
        return int(text) if text.isdigit() and text.isascii() else decode(text)

    return decoded


def _close_run(answers: bytearray, ran: "array[int]") -> None:
    """The run of successes so far, as one DONE_ALL after the answers before them."""
    if ran:
        data = ran.tobytes()
        answers += TO_WORKER.pack(len(data), DONE_ALL, 0)
        answers += data
        del ran[:]


def _answer(fd: int, answers: bytearray, ran: "array[int]") -> None:
    _close_run(answers, ran)
    if answers:
        sys.stdout.flush()  # what the function printed reaches the log before a crash
        write_all(fd, bytes(answers))
        answers.clear()


def write_all(fd: int, data: bytes) -> None:
    """A blocking write of all of `data`."""
    while data:
        data = data[os.write(fd, data) :]


def _next_frame(fd: int, incoming: bytearray) -> bytes | None:
    """Reads until a whole frame is there; returns it (None at the end of the input)."""
    header = TO_CHILD.size
    while len(incoming) < header or len(incoming) < header + TO_CHILD.unpack_from(incoming)[0]:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        incoming += chunk
    size = header + TO_CHILD.unpack_from(incoming)[0]
    frame = bytes(incoming[header:size])
    del incoming[:size]
    return frame


def _die_with(worker: int) -> None:
    """Killed by the kernel as soon as the worker is gone (Linux's parent-death signal, which
    follows the thread that started us: the worker's main thread), so that a killed worker's
    item does not run on unseen; exits at once if the worker is already gone."""
    import ctypes  # here: the worker imports this module too, and never needs ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker:
        sys.exit(0)


def main() -> None:
    in_fd, out_fd, progress_fd, worker = (int(a) for a in sys.argv[1:5])
    _die_with(worker)
    # No pipe goes to a program the function runs: its end of file tells us the worker is
    # done, and the worker's tells it that we died.
    for fd in (in_fd, out_fd, progress_fd):
        os.set_inheritable(fd, False)
    shared = mmap.mmap(progress_fd, PROGRESS.size)
    try:
        code = serve(in_fd, out_fd, memoryview(shared).cast("q"))
    except BrokenPipeError:  # the worker is gone: nobody to answer
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    main()
