"""The leases role against a real Redis: order, leases, fencing, retries, dead letters."""

import pytest

from tests.polling import wait_until
from wq.base.item import encode
from wq.read.ledger import DEAD, DONE, IN_FLIGHT, PENDING, iter_records
from wq.seed.items_source import ItemRange
from wq.seed.seeder import seed_items, seed_range
from wq.store.completions import Completions, Results
from wq.store.leases import FailOutcome, Reaped
from wq.store.queue import RunQueue


def seed(queue: RunQueue, values: list[object]) -> None:
    seed_items(queue, [encode(v) for v in values])


def wait_for_an_expired_lease(queue: RunQueue) -> None:
    wait_until("a lease to expire", lambda: queue.leases.lease(0, 30, "probe").expired_leases, 10)


def test_lease_is_fifo_in_seed_order_and_batches(queue: RunQueue) -> None:
    seed(queue, ["a", "b", "c", "d", "e"])
    first = queue.leases.lease(2, 30, "t1")
    second = queue.leases.lease(10, 30, "t2")
    assert [i.value for i in first.items] == ["a", "b"]
    assert [i.value for i in second.items] == ["c", "d", "e"]
    assert [i.position for i in first.items + second.items] == [0, 1, 2, 3, 4]
    assert all(i.attempt == 1 for i in first.items + second.items)
    assert (second.pending, second.in_flight) == (0, 5)
    assert not second.drained


def test_unseeded_run_leases_nothing_and_is_not_drained(queue: RunQueue) -> None:
    reply = queue.leases.lease(5, 30, "t")
    assert not reply.seeded
    assert reply.items == []
    assert not reply.drained


def test_drained_only_when_nothing_pending_and_nothing_in_flight(queue: RunQueue) -> None:
    seed(queue, ["a", "b"])
    got = queue.leases.lease(2, 30, "t").items
    assert not queue.leases.lease(1, 30, "u").drained  # both in flight
    queue.leases.complete("t", "w", [got[0].position])
    assert not queue.leases.lease(1, 30, "u").drained  # one still in flight
    queue.leases.complete("t", "w", [got[1].position])
    assert queue.leases.lease(1, 30, "u").drained
    status = queue.reading.status()
    assert (status.done, status.pending, status.in_flight, status.dead) == (2, 0, 0, 0)
    assert status.clean


def test_expired_lease_is_reclaimed_and_counts_as_an_attempt(queue: RunQueue) -> None:
    seed(queue, ["a", "b"])
    queue.leases.lease(1, 30, "alive")
    # A live lease is not reclaimed.
    assert queue.leases.reap(max_attempts=3) == Reaped(requeued=0, dead=0)
    queue.leases.lease(1, 0.05, "dead-worker")
    wait_for_an_expired_lease(queue)
    assert queue.leases.reap(max_attempts=3) == Reaped(requeued=1, dead=0)  # only the expired one
    again = queue.leases.lease(1, 30, "survivor").items
    assert [(i.value, i.attempt) for i in again] == [("b", 2)]
    status = queue.reading.status()
    assert (status.retried, status.in_flight) == (1, 2)


def test_late_result_of_an_expired_lease_is_rejected_and_done_recorded_once(
    queue: RunQueue,
) -> None:
    seed(queue, ["a"])
    queue.leases.lease(1, 0.05, "slow")
    wait_for_an_expired_lease(queue)
    queue.leases.reap(max_attempts=3)
    queue.leases.lease(1, 30, "fast")
    assert queue.leases.complete("slow", "w-slow", [0]) == [0]  # rejected: someone else holds it
    assert queue.leases.fail("slow", 0, "boom", 3) is FailOutcome.STALE
    assert queue.leases.complete("fast", "w-fast", [0]) == []
    assert queue.leases.complete("fast", "w-fast", [0]) == [0]  # a repeat is not recorded twice
    status = queue.reading.status()
    assert status.done == 1
    assert status.stale == 3
    [record] = iter_records(queue, states=(DONE, DEAD))
    assert (record.position, record.worker, record.attempts) == (0, "w-fast", 2)


def test_failures_retry_then_dead_letter_with_last_error(queue: RunQueue) -> None:
    seed(queue, ["poison", "fine"])
    for attempt in (1, 2, 3):
        item = queue.leases.lease(1, 30, f"t{attempt}").items[0]
        assert (item.value, item.attempt) == ("poison", attempt)
        expected = FailOutcome.DEAD if attempt == 3 else FailOutcome.RETRY
        assert queue.leases.fail(f"t{attempt}", item.position, f"error {attempt}", 3) is expected
    dead = list(iter_records(queue, states=(DEAD,)))
    assert [(d.position, d.item, d.error) for d in dead] == [(0, '"poison"', "error 3")]
    rest = queue.leases.lease(5, 30, "t9").items
    assert [i.value for i in rest] == ["fine"]
    queue.leases.complete("t9", "w", [1])
    status = queue.reading.status()
    assert status.drained
    assert not status.clean
    assert (status.done, status.dead, status.retried) == (1, 1, 2)


def test_release_hands_items_back_first_without_using_an_attempt(queue: RunQueue) -> None:
    seed(queue, ["a", "b", "c", "d"])
    held = queue.leases.lease(3, 30, "t").items
    assert queue.leases.release("t", [i.position for i in held[1:]]) == 2
    again = queue.leases.lease(3, 30, "u").items
    assert [(i.value, i.attempt) for i in again] == [("b", 1), ("c", 1), ("d", 1)]
    assert queue.leases.release("t", [1]) == 0  # no longer held by t
    assert queue.reading.status().released == 2


def test_renew_keeps_a_lease_alive_past_its_length(queue: RunQueue) -> None:
    seed(queue, ["a", "b", "c"])
    queue.leases.lease(2, 0.05, "t")
    queue.leases.lease(1, 0.05, "u")
    assert queue.leases.renew(["t"], 30) == []  # t's batch now has 30 s; u's does not
    wait_for_an_expired_lease(queue)
    # Only the unrenewed lease of u expired; it held one item alone, which is charged.
    assert queue.leases.reap(3) == Reaped(requeued=1, dead=0)
    assert queue.leases.renew(["t", "u"], 30) == ["u"]  # lost
    assert queue.reading.status().in_flight == 2


@pytest.mark.parametrize("count", [1, 999, 1000, 2500])
def test_batches_up_to_the_script_limit(queue: RunQueue, count: int) -> None:
    seed(queue, list(range(count)))
    got = []
    while True:
        batch = queue.leases.lease(5000, 30, "t").items
        if not batch:
            break
        got.extend(batch)
        assert queue.leases.complete("t", "w", [i.position for i in batch]) == []
    assert [i.value for i in got] == list(range(count))
    assert queue.reading.status().done == count


@pytest.mark.parametrize(
    ("start", "stop", "step"),
    [(2**53 + 1, 2**53 + 7, 1), (2**63 - 30, 2**63 - 1, 7), (-(2**63), -(2**63) + 3, 1)],
)
def test_range_items_are_exact_integers(queue: RunQueue, start: int, stop: int, step: int) -> None:
    seed_range(queue, ItemRange(start, stop, step))
    got = queue.leases.lease(100, 30, "t").items
    assert [i.value for i in got] == list(range(start, stop, step))


def test_an_expired_batch_is_not_charged_and_comes_back_one_at_a_time(queue: RunQueue) -> None:
    seed(queue, ["a", "b", "c", "d"])
    queue.leases.lease(3, 0.05, "died-with-a-batch")
    wait_for_an_expired_lease(queue)
    # With one attempt each, still none dead.
    assert queue.leases.reap(max_attempts=1) == Reaped(requeued=3, dead=0)
    leased = [queue.leases.lease(10, 30, f"t{n}").items for n in range(3)]
    assert [[(i.value, i.attempt) for i in items] for items in leased] == [
        [("a", 1)],
        [("b", 1)],
        [("c", 1)],
    ]
    assert [i.value for i in queue.leases.lease(10, 30, "fresh").items] == ["d"]
    assert queue.reading.status().dead == 0


def all_leases_expired(queue: RunQueue) -> bool:
    """Every lease's deadline is past, on the server's clock (reap.lua's test)."""
    seconds, micros = queue.client.time()
    latest = queue.client.zrange(queue.keys.leases, -1, -1, withscores=True)
    return not latest or latest[0][1] <= int(seconds) * 1000 + int(micros) // 1000


def test_reap_all_names_the_items_it_requeued_and_those_it_dead_lettered(
    queue: RunQueue,
) -> None:
    seed(queue, ["alone", "a", "b", "c"])
    queue.leases.lease(1, 0.05, "died-running-it-alone")
    queue.leases.lease(3, 0.05, "died-with-a-batch")
    wait_until("every lease to expire", lambda: all_leases_expired(queue), 10)
    # Alone, on its last attempt: dead. The batch: back uncharged.
    assert queue.leases.reap_all(max_attempts=1) == Reaped(requeued=3, dead=1)
    assert queue.leases.reap_all(max_attempts=1) == Reaped(requeued=0, dead=0)
    assert queue.reading.status().dead == 1


def test_a_lease_retried_after_its_reply_was_lost_gets_the_same_batch(queue: RunQueue) -> None:
    seed(queue, ["a", "b", "c", "d"])
    first = queue.leases.lease(3, 30, "t")
    again = queue.leases.lease(3, 30, "t")
    assert again.items == first.items
    status = queue.reading.status()
    assert (status.in_flight, status.pending, status.executions) == (3, 1, 3)


def test_the_next_lease_records_the_finished_batch_in_the_same_call(queue: RunQueue) -> None:
    seed(queue, ["a", "b", "c", "d", "e"])
    held = queue.leases.lease(3, 30, "t").items
    assert queue.leases.fail("t", held[1].position, "boom", 3) is FailOutcome.RETRY
    [retried] = queue.leases.lease(1, 30, "u").items
    finished = Completions([0, 1, 2], [1, 1, 1], [5, 5, 5], {2: '"out"'})
    reply = queue.leases.lease(2, 30, "v", Results("t", "w", finished))
    assert reply.stale == [1]  # failed, and held by u now: t's result for it is refused
    assert [i.value for i in reply.items] == ["d", "e"]
    status = queue.reading.status()
    assert (status.done, status.in_flight, status.stale) == (2, 3, 1)
    assert queue.reading.outputs([2]) == {2: '"out"'}
    assert queue.leases.complete("u", "w", [retried.position]) == []


def test_a_position_given_twice_is_recorded_once(queue: RunQueue) -> None:
    seed(queue, ["a", "b"])
    queue.leases.lease(2, 30, "t")
    assert queue.leases.complete("t", "w", [0, 0, 1]) == [0]
    status = queue.reading.status()
    assert (status.done, status.in_flight, status.stale) == (2, 0, 1)


def test_a_batch_holds_what_has_not_left_it(queue: RunQueue) -> None:
    """Of a batch, what failed or was released leaves it at once; a done item stays in its
    record (its ledger record says it is done) until the whole batch is."""
    seed(queue, ["a", "b", "c", "d"])
    queue.leases.lease(4, 30, "t")
    assert queue.leases.fail("t", 1, "boom", 3) is FailOutcome.RETRY
    assert queue.leases.release("t", [2]) == 1
    assert queue.leases.complete("t", "w", [0]) == []
    assert queue.reading.leased_positions() == {0, 3}
    states = {r.position: r.state for r in iter_records(queue)}
    assert states == {0: DONE, 1: PENDING, 2: PENDING, 3: IN_FLIGHT}
    assert queue.reading.status().in_flight == 1
    assert queue.leases.complete("t", "w", [3]) == []
    assert queue.reading.leased_positions() == set()
    assert queue.client.exists(queue.keys.batches, queue.keys.leases) == 0
