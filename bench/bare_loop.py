"""The limit wq's worker is measured against in throughput.py: one process of a bare
lease/complete loop, batches of 1,000, through wq's public store API and nothing else (no
handler, no slots, no heartbeat), until the run is drained.

    python bench/bare_loop.py REDIS_URL RUN

It tunes the garbage collector as `wq work` does (wq.base.collector): the ratio to it is then
wq's own work per item, not a setting of the runtime. It reads of the lease reply only
`items` (each item's position and attempt), `drained` and `seeded`, so that it goes on
measuring the store as its reply gains or loses other fields.
"""

import os
import secrets
import sys
import time

from wq.base.collector import collect_less
from wq.base.options import ConnectionConfig
from wq.store.completions import Completions
from wq.store.queue import open_queue

BATCH = 1000
LEASE_S = 60.0
# While other processes hold the last items: not a busy loop on Redis.
IDLE_S = 0.001


def main() -> None:
    url, run = sys.argv[1:3]
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
            done = Completions(positions, attempts, [0] * len(positions), {})
            queue.leases.complete(token, worker, done)
        elif reply.drained:
            break
        else:
            time.sleep(IDLE_S)
    queue.close()


if __name__ == "__main__":
    main()
