"""The limit wq's worker is measured against in throughput.py: one process of a bare
lease/complete loop, batches of 1,000, through wq's public store API and nothing else (no
handler, no slots, no heartbeat), until the run is drained.

    python bench/bare_loop.py REDIS_URL RUN [--handler-process]

It tunes the garbage collector as `wq work` does (wq.base.collector): the ratio to it is then
wq's own work per item, not a setting of the runtime. It reads of the lease reply only
`items` (each item's position and attempt), `drained` and `seeded`, so that it goes on
measuring the store as its reply gains or loses other fields.

--handler-process adds the least a handler isolated in a process of its own needs, and
nothing wq adds to it (no progress page, no timeouts, no fault handling, no overlap of the
two processes): each batch's items go to a forked process as one frame of their JSON texts,
which calls bench/noop.py's function on each decoded item, as wq's handler process decodes
them, and answers with their durations, which the loop records. What that costs against the
bare loop is what isolating the handler costs any worker; what wq costs on top, its own.
"""

import os
import secrets
import struct
import sys
import time
from array import array

from noop import noop
from wq.base.collector import collect_less
from wq.base.options import ConnectionConfig
from wq.store.completions import Completions
from wq.store.queue import open_queue
from wq.work.child import item_decoder, natural_numbers, write_all

BATCH = 1000
LEASE_S = 60.0
# While other processes hold the last items: not a busy loop on Redis.
IDLE_S = 0.001
FRAME = struct.Struct("<I")  # a frame's payload length, either way


def main() -> None:
    url, run = sys.argv[1:3]
    handler = HandlerProcess() if "--handler-process" in sys.argv[3:] else None
    queue = open_queue(ConnectionConfig(redis_url=url, run_id=run, redis_wait=10))
    worker = f"bare-{os.getpid()}"
    collect_less()
    while True:
        token = secrets.token_hex(8)
        reply = queue.leases.lease(BATCH, LEASE_S, token)
        if not reply.seeded:
            sys.exit(f"run {run!r} is not seeded")
        if reply.items:
            positions = [i.position for i in reply.items]
            attempts = [i.attempt for i in reply.items]
            if handler:
                durations_ms = handler.run([i.raw for i in reply.items])
            else:
                durations_ms = [0] * len(positions)
            done = Completions(positions, attempts, durations_ms, {})
            queue.leases.complete(token, worker, done)
        elif reply.drained:
            break
        else:
            time.sleep(IDLE_S)
    queue.close()
    if handler:
        handler.close()


class HandlerProcess:
    """A forked process that runs noop on each item of a frame and answers their durations.
    Forked before the loop tunes the collector: a handler runs under Python's defaults, as in
    wq's handler process."""

    def __init__(self) -> None:
        to_child, self._to_child = os.pipe()
        self._from_child, from_parent = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._to_child)
            os.close(self._from_child)
            _serve(to_child, from_parent)
            os._exit(0)
        os.close(to_child)
        os.close(from_parent)

    def run(self, texts: list[str]) -> list[int]:
        """Each item's duration in milliseconds."""
        payload = "\n".join(texts).encode()
        write_all(self._to_child, FRAME.pack(len(payload)) + payload)
        answer = _read_frame(self._from_child)
        if answer is None:
            sys.exit("the handler process died")
        durations = array("q")
        durations.frombytes(answer)
        return [d // 1_000_000 for d in durations]

    def close(self) -> None:
        os.close(self._to_child)
        os.waitpid(self.pid, 0)


def _serve(in_fd: int, out_fd: int) -> None:
    decode, clock = item_decoder(), time.monotonic_ns
    while (payload := _read_frame(in_fd)) is not None:
        read = int if natural_numbers(payload) else decode
        durations = array("q")
        started = clock()
        for text in payload.decode().split("\n"):
            noop(read(text))
            ended = clock()
            durations.append(ended - started)
            started = ended
        data = durations.tobytes()
        write_all(out_fd, FRAME.pack(len(data)) + data)


def _read_frame(fd: int) -> bytearray | None:
    header = _read_exactly(fd, FRAME.size)
    return None if header is None else _read_exactly(fd, FRAME.unpack(header)[0])


def _read_exactly(fd: int, size: int) -> bytearray | None:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


if __name__ == "__main__":
    main()
