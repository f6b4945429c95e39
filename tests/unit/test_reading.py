"""The reading role's replies against a real Redis, by name: the seeded state and the metrics
(the ledger's windows: test_ledger)."""

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
