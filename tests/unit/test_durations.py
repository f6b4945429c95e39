"""The durations histogram against a real Redis: written by the calls that record attempts
(complete.lua, fail.lua), never by a late result or a dead worker, and gone with its run."""

import re
from collections import Counter

import pytest

from tests.unit.test_ledger import run_worker
from tests.unit.test_worker import Recorder
from wq.base.item import encode
from wq.seed.items_source import ItemRange
from wq.seed.seeder import seed_items, seed_range
from wq.store import layout
from wq.store.completions import Completions, Finished
from wq.store.leases import FailOutcome
from wq.store.queue import RunQueue
from wq.store.scripts import script_text
from wq.work.worker import EXIT_DRAINED


def durations(queue: RunQueue) -> layout.Durations:
    return layout.Durations.of(queue.client.hgetall(queue.keys.durations))


def counted(queue: RunQueue) -> dict[int, int]:
    """Bucket -> attempts, for the buckets that have any."""
    return {b: n for b, n in enumerate(durations(queue).counts) if n}


def hincrby_calls(queue: RunQueue) -> int:
    stats = queue.client.info("commandstats")
    return int(stats.get("cmdstat_hincrby", {}).get("calls", 0))


@pytest.mark.parametrize("script", ["complete", "fail"])
def test_the_scripts_bounds_are_the_layouts(script: str) -> None:
    """The scripts get the bounds in their prelude (test_scripts checks its values), once."""
    found = re.findall(r"^local DURATION_BUCKETS_MS = \{([^}]*)\}$", script_text(script), re.M)
    assert len(found) == 1, f"{script}.lua gets DURATION_BUCKETS_MS {len(found)} times"
    bounds = tuple(int(b) for b in found[0].split(","))
    assert bounds == layout.DURATION_BUCKETS_MS
    # Whole milliseconds: no bound is rounded on its way to the scripts.
    assert [b / 1000 for b in bounds] == list(layout.DURATION_BUCKETS_S)
    assert list(bounds) == sorted(set(bounds))


def test_each_duration_lands_in_the_first_bucket_that_holds_it(queue: RunQueue) -> None:
    """A bound is inclusive (Prometheus' `le`); past the last one is +Inf."""
    cases = {0: 0, 5: 0, 6: 1, 10: 1, 999: 7, 1000: 7, 1001: 8, 3_600_000: 17, 3_600_001: 18}
    seed_range(queue, ItemRange(0, len(cases) + 1, 1))
    held = queue.leases.lease(100, 30, "t").items
    done = [Finished(i.position, ms) for i, ms in zip(held, cases, strict=False)]
    unknown = Finished(held[-1].position)  # a duration not known: not counted
    assert queue.leases.complete("t", "w", [*done, unknown]) == []
    assert counted(queue) == dict(Counter(cases.values()))
    assert durations(queue).sum_ms == sum(cases)
    assert queue.reading.status().done == len(cases) + 1


def test_a_call_adds_once_per_bucket_it_touches(queue: RunQueue) -> None:
    """The histogram costs a batch of fast items two HINCRBYs, not one per item."""
    seed_range(queue, ItemRange(0, 1000, 1))
    held = queue.leases.lease(1000, 30, "t").items
    batch = Completions(
        positions=[i.position for i in held],
        attempts=[1] * 1000,
        durations_ms=[n % 2 for n in range(1000)],  # 0 and 1 ms: one bucket
        outputs={},
    )
    before = hincrby_calls(queue)
    assert queue.leases.complete("t", "w", batch) == []
    # meta's 'done', 'workers' (the worker's number) and 'in_flight', the bucket of 0-5 ms, and
    # sum_ms.
    assert hincrby_calls(queue) - before == 5
    assert counted(queue) == {0: 1000}
    assert durations(queue).sum_ms == 500


def test_failed_attempts_count_retried_or_dead_and_late_results_do_not(
    queue: RunQueue,
) -> None:
    seed_items(queue, [encode(v) for v in ["a", "b"]])
    held = queue.leases.lease(2, 30, "t").items
    fail = queue.leases.fail
    assert fail("t", held[0].position, "flaky", 2, duration_ms=20) is FailOutcome.RETRY
    assert fail("t", held[1].position, "poison", 1, duration_ms=2000) is FailOutcome.DEAD
    assert fail("t", held[1].position, "again", 1, duration_ms=40) is FailOutcome.STALE
    [again] = queue.leases.lease(1, 30, "u").items
    assert queue.leases.complete("t", "w", [Finished(again.position, 30)]) == [again.position]
    assert fail("u", again.position, "flaky", 2) is FailOutcome.DEAD  # duration not known
    assert counted(queue) == {2: 1, 8: 1}
    assert durations(queue).sum_ms == 2020


def test_purge_and_the_results_ttl_take_the_histogram_with_the_run(queue: RunQueue) -> None:
    seed_items(queue, [encode(v) for v in ["a", "b"]])
    assert run_worker(queue, Recorder(), results_ttl_s=3600) == EXIT_DRAINED
    assert durations(queue).observed == 2
    assert 0 < queue.client.pttl(queue.keys.durations) <= 3_600_000
    queue.admin.purge()
    assert not queue.client.exists(queue.keys.durations)
