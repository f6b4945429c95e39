"""The reading role's replies against a real Redis, by name: the seeded state and the metrics
(the ledger's windows: test_ledger)."""

import dataclasses

from tests.polling import wait_until
from wq.base.item import encode
from wq.seed.seeder import seed_items
from wq.store import layout
from wq.store.completions import Finished
from wq.store.queue import RunQueue
from wq.store.reading import RunMetrics, SeedState


def test_the_seed_state_names_whether_and_with_what_the_run_was_seeded(
    queue: RunQueue, redis_url: str
) -> None:
    from tests.unit.conftest import make_queue

    assert queue.reading.seed_state() == SeedState(seeded=False, digest=None)
    seeded = seed_items(queue, [encode("a"), encode("b")])
    assert queue.reading.seed_state() == SeedState(seeded=True, digest=seeded.digest)
    assert queue.reading.is_seeded()
    opened = make_queue(redis_url, queue.run + "-open")
    empty = seed_items(opened, [], open_run=True)
    # An open run: the digest it was opened with (of no items), until its seal records one.
    assert opened.reading.seed_state() == SeedState(seeded=True, digest=empty.digest)
    opened.admin.purge()
    opened.close()


def test_the_metrics_are_the_status_and_the_durations_read_together(queue: RunQueue) -> None:
    seed_items(queue, [encode(n) for n in range(3)])
    held = queue.leases.lease(2, 30, "t").items
    assert queue.leases.complete("t", "w", [Finished(held[0].position, 20)]) == []
    metrics = queue.reading.metrics()
    assert isinstance(metrics, RunMetrics)
    assert (metrics.status.total, metrics.status.done, metrics.status.in_flight) == (3, 1, 1)
    assert metrics.durations.observed == 1
    assert metrics.durations.sum_ms == 20
    assert metrics.durations == layout.Durations.of(
        queue.client.hgetall(queue.keys.durations)  # the histogram as stored
    )


def redis_ms(queue: RunQueue) -> int:
    seconds, micros = queue.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_a_drained_run_says_how_long_it_took_and_that_stops_growing(queue: RunQueue) -> None:
    """Its time runs from the first lease to its last item, not to now, so its mean rate
    stays what it was at the drain."""
    seed_items(queue, [encode(n) for n in range(4)])
    held = queue.leases.lease(4, 30, "t").items
    running = queue.reading.status()
    assert running.elapsed_s is not None
    assert running.item_p50_s is None
    finished = [Finished(i.position, 3 if i.position else 40) for i in held]
    assert queue.leases.complete("t", "w", finished) == []
    meta = queue.client.hgetall(queue.keys.meta)
    took = (int(meta[layout.LAST_FINISHED_MS]) - int(meta[layout.FIRST_LEASE_MS])) / 1000
    drained = queue.reading.status()
    assert drained.drained
    assert drained.elapsed_s == took
    # Later by the Redis clock, the same figures.
    end = int(meta[layout.LAST_FINISHED_MS])
    wait_until("Redis time past the drain", lambda: redis_ms(queue) > end + 20, 5)
    later = queue.reading.status()
    assert (later.elapsed_s, later.rate) == (drained.elapsed_s, drained.rate)
    # 3 of the 4 took 3 ms (the 0-5 ms bucket), one 40 ms (the 25-50 ms bucket).
    assert (later.item_p50_s, later.item_p99_s) == (0.005, 0.05)
    assert "first lease to last item" in later.to_text()
    assert "p50 <= 5 ms, p99 <= 50 ms" in later.to_text()
    # An item time past the histogram's last bound has no bound to show.
    slow = dataclasses.replace(later, item_p99_s=None)
    assert "p50 <= 5 ms, p99 longer than the last bucket" in slow.to_text()
