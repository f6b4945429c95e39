"""The reference: the Kubernetes docs' work-queue client protocol, one item per round trips.

Per item, as in the docs' rediswq.py: LLEN both lists (is the queue empty?), BRPOPLPUSH the
item into the processing list, SETEX a lease key, then on completion LREM it from the
processing list and DEL the lease key. Run as `python docs_client.py URL QUEUE`.
"""

import sys
import uuid

import redis


def work(url: str, queue: str) -> int:
    db = redis.Redis.from_url(url)
    processing = queue + ":processing"
    session = str(uuid.uuid4())
    done = 0
    while True:
        if db.llen(queue) == 0 and db.llen(processing) == 0:
            return done
        item = db.brpoplpush(queue, processing, timeout=1)
        if item is None:
            continue
        lease_key = f"{queue}:leased_by_session:{item!r}"
        db.set(lease_key, session, ex=60)
        db.lrem(processing, 0, item)
        db.delete(lease_key)
        done += 1


if __name__ == "__main__":
    work(sys.argv[1], sys.argv[2])
