"""A Redis rolled back to an earlier state of the run, as one that lost the last second of its
append-only file (appendfsync everysec, the chart's default) comes back, while its workers
remember more: each item is still recorded done exactly once, and only finished items run again.

The rollback is made exact here: every key of the run is dumped (the state the file holds) and
restored later (the writes after it lost). tests/unit/test_faults.py does it to running workers
by cutting the file itself short."""

from collections.abc import Callable, Iterator

import pytest
import redis

from tests.polling import wait_until
from wq.read.ledger import DONE, account, iter_records
from wq.seed.seeder import seed_items
from wq.store.leases import Reaped
from wq.store.queue import RunQueue


def snapshot(client: "redis.Redis[bytes]", run: str) -> Callable[[], None]:
    """The run's keys now; the call puts them back as they are now (a rollback)."""
    keys = list(client.scan_iter(match=f"wq:{{{run}}}:*", count=1000))
    dumped = {key: client.dump(key) for key in keys}

    def rollback() -> None:
        for key in client.scan_iter(match=f"wq:{{{run}}}:*", count=1000):
            client.delete(key)
        for key, value in dumped.items():
            assert isinstance(value, bytes)
            client.restore(key, 0, value)

    return rollback


@pytest.fixture
def raw(redis_url: str) -> Iterator["redis.Redis[bytes]"]:
    """A client that leaves values as bytes, as DUMP's are."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def done_records(queue: RunQueue) -> dict[int, int]:
    """Position -> attempts of the records marked done."""
    return {r.position: r.attempts for r in iter_records(queue) if r.state == DONE}


def test_a_completion_lost_in_the_rollback_runs_the_item_again_once(
    queue: RunQueue, raw: "redis.Redis[bytes]"
) -> None:
    seed_items(queue, ['"a"', '"b"'])
    (item,) = queue.leases.lease(1, 0.2, "first").items
    rollback = snapshot(raw, queue.run)
    assert queue.leases.complete("first", "w1", [item.position]) == []
    rollback()  # the completion is gone: the item is in flight again, under "first"

    # Its worker, which thinks it done, renews no more; the lease expires and is reclaimed.
    wait_until("the lease to expire", lambda: queue.leases.lease(0, 30, "x").expired_leases, 10)
    assert queue.leases.reap(max_attempts=3) == Reaped(requeued=1, dead=0)
    (again,) = queue.leases.lease(1, 30, "second").items
    assert again.position == item.position
    assert queue.leases.complete("second", "w2", [again.position]) == []
    # A late copy of the first completion (its reply lost in the outage) is refused.
    assert queue.leases.complete("first", "w1", [item.position]) == [item.position]

    (rest,) = queue.leases.lease(1, 30, "third").items
    queue.leases.complete("third", "w3", [rest.position])
    assert account(queue).exact
    assert done_records(queue) == {0: 2, 1: 1}  # charged once for the lost lease, then done
    assert queue.reading.status().done == 2


def test_a_completion_sent_again_after_the_rollback_counts_once(
    queue: RunQueue, raw: "redis.Redis[bytes]"
) -> None:
    """A worker whose completion went in just before the crash, and was lost, sends it again
    (its reply never came): the rolled-back lease accepts it, once."""
    seed_items(queue, ['"a"'])
    (item,) = queue.leases.lease(1, 30, "t").items
    rollback = snapshot(raw, queue.run)
    assert queue.leases.complete("t", "w", [item.position]) == []
    rollback()
    assert queue.leases.complete("t", "w", [item.position]) == []
    assert queue.leases.complete("t", "w", [item.position]) == [item.position]
    status = queue.reading.status()
    assert (status.done, status.in_flight, status.pending) == (1, 0, 0)
    assert account(queue).exact
    assert done_records(queue) == {0: 1}


def test_a_lease_lost_in_the_rollback_fences_its_worker(
    queue: RunQueue, raw: "redis.Redis[bytes]"
) -> None:
    """An item leased after the state Redis came back to is pending again and leased anew:
    the first worker's renewal says its lease is lost and its result is refused."""
    seed_items(queue, ['"a"'])
    rollback = snapshot(raw, queue.run)
    (item,) = queue.leases.lease(1, 30, "before").items
    rollback()
    (again,) = queue.leases.lease(1, 30, "after").items
    assert again.position == item.position
    assert queue.leases.renew(["before"], 30) == ["before"]
    assert queue.leases.complete("before", "w1", [item.position]) == [item.position]
    assert queue.leases.complete("after", "w2", [again.position]) == []
    assert account(queue).exact
    assert done_records(queue) == {0: 1}
