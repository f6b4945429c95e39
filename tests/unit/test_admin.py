"""The admin role against a real Redis: retry-dead, purge, the results' expiry and the
autoscaler's records; and the keys that make up a run."""

from collections import Counter

from wq.base.item import encode
from wq.read.ledger import DEAD, DONE, iter_records
from wq.seed.seeder import adopt_list, seed_items
from wq.store import layout
from wq.store.admin import RetryDeadStep
from wq.store.keys import RunKeys
from wq.store.leases import FailOutcome
from wq.store.queue import RunQueue


def seed(queue: RunQueue, values: list[object]) -> None:
    seed_items(queue, [encode(v) for v in values])


# Longer than a Redis hash keeps in the compact listpack encoding (64 bytes), so the dead hash
# is a real hash table and HSCAN returns it a few fields at a time, as with a big run.
LONG_ERROR = "Traceback (most recent call last): ValueError: the handler gave up on this item"


def dead_letter(queue: RunQueue, n: int, token: str = "doomed") -> list[int]:
    """Lease n items and fail each for good, as a worker with --max-attempts 1 would."""
    held = queue.leases.lease(n, 30, token).items
    for item in held:
        assert queue.leases.fail(token, item.position, LONG_ERROR, 1) is FailOutcome.DEAD
    return [i.position for i in held]


def places(queue: RunQueue) -> Counter[int]:
    """How many places hold each position: not leased yet, requeued, leased, done or dead."""
    k, c = queue.keys, queue.client
    total, cursor = (int(v or 0) for v in c.hmget(k.meta, layout.TOTAL, layout.CURSOR))
    where: Counter[int] = Counter(range(cursor, total))
    where.update(int(p) for p in c.lrange(k.requeue, 0, -1))
    where.update(int(m.split(":")[0]) for m in c.zrange(k.leases, 0, -1))
    where.update(r.position for r in iter_records(queue, states=(DONE,)))
    where.update(int(p) for p in c.hkeys(k.dead))
    return where


def assert_each_item_in_one_place(queue: RunQueue, total: int) -> None:
    where = places(queue)
    assert sorted(where) == list(range(total))
    assert [p for p, n in where.items() if n != 1] == []


def test_retry_dead_gives_fresh_attempts(queue: RunQueue) -> None:
    seed(queue, ["x"])
    queue.leases.lease(1, 30, "t")
    assert queue.leases.fail("t", 0, "bad", 1) is FailOutcome.DEAD
    assert queue.admin.retry_dead() == 1
    item = queue.leases.lease(1, 30, "u").items[0]
    assert (item.value, item.attempt) == ("x", 1)
    assert list(iter_records(queue, states=(DEAD,))) == []


def test_retry_dead_in_small_chunks_requeues_every_dead_item_once(queue: RunQueue) -> None:
    seed(queue, list(range(300)))
    dead_letter(queue, 300)
    assert queue.admin.retry_dead(chunk=4) == 300
    requeued = [int(p) for p in queue.client.lrange(queue.keys.requeue, 0, -1)]
    assert sorted(requeued) == list(range(300))
    assert queue.reading.status().dead == 0
    again = queue.leases.lease(1000, 30, "t").items
    assert sorted(i.value for i in again) == list(range(300))
    assert {i.attempt for i in again} == {1}
    assert queue.admin.retry_dead(chunk=4) == 0


def test_a_retry_dead_step_names_where_the_next_starts_and_what_it_requeued(
    queue: RunQueue,
) -> None:
    seed(queue, list(range(3)))
    dead_letter(queue, 3)
    assert queue.admin.retry_dead_chunk("0", 100) == RetryDeadStep(cursor="0", requeued=3)
    assert queue.admin.retry_dead_chunk("0", 100) == RetryDeadStep(cursor="0", requeued=0)


def test_retry_dead_chunks_between_worker_calls_lose_and_double_nothing(queue: RunQueue) -> None:
    """Workers lease, complete and dead-letter items between two chunks of retry-dead: every
    item dead when it started comes back once, and no item is ever in two places."""
    total = 200
    seed(queue, list(range(total)))
    dead_letter(queue, 150)
    again = "failed again after retry-dead: " + LONG_ERROR
    cursor, steps, requeued = "0", 0, 0
    while True:
        step = queue.admin.retry_dead_chunk(cursor, 3)
        cursor, steps, requeued = step.cursor, steps + 1, requeued + step.requeued
        token = f"w{steps}"
        held = queue.leases.lease(2, 30, token).items
        if held:
            assert queue.leases.fail(token, held[0].position, again, 1) is FailOutcome.DEAD
            assert queue.leases.complete(token, "w", [i.position for i in held[1:]]) == []
        assert_each_item_in_one_place(queue, total)
        if cursor == "0":
            break
    assert steps > 10  # the chunk boundaries were crossed
    assert requeued >= 150
    # Every item dead at the start came back: those dead now died again after that.
    dead = queue.client.hgetall(queue.keys.dead)
    assert set(dead.values()) <= {again}
    assert len(dead) <= steps


def test_purge_deletes_only_this_run(queue: RunQueue, redis_url: str) -> None:
    from tests.unit.conftest import make_queue

    other = make_queue(redis_url, queue.run + "-other")
    seed(queue, ["a"])
    seed(other, ["b"])
    assert queue.admin.purge() >= 2
    assert not queue.reading.is_seeded()
    assert other.reading.is_seeded()
    other.admin.purge()
    other.close()


def test_purge_in_small_rounds_deletes_every_key_of_only_this_run(
    queue: RunQueue, redis_url: str
) -> None:
    from tests.unit.conftest import make_queue

    other = make_queue(redis_url, queue.run + "-other")
    seed(queue, list(range(100)))
    seed(other, ["b"])
    dead_letter(queue, 10)
    queue.leases.lease(5, 30, "t")
    for n in range(25):  # staging hashes of seeders that died, found by SCAN
        queue.seeding.stage_items(queue.keys.staging_items(f"orphan{n}"), [encode(n)], 32)
    mine = set(queue.client.scan_iter(match=queue.keys.pattern))
    # meta, items, leases, batches, dead, errors, ledger and the staging hashes
    assert len(mine) == 32
    assert queue.admin.purge(chunk=2) == len(mine)
    assert list(queue.client.scan_iter(match=queue.keys.pattern)) == []
    assert other.reading.status().total == 1
    other.admin.purge()
    other.close()


def command_calls(queue: RunQueue) -> Counter[str]:
    """Calls per Redis command so far, on the whole server (Lua scripts' calls included)."""
    stats = queue.client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()})


def test_keys_are_unlinked_never_deleted_in_redis_main_thread(
    queue: RunQueue, redis_url: str
) -> None:
    """DEL frees a big value before Redis serves the next call (0.1-0.4 s for a 1M-item run);
    UNLINK frees it in the background."""
    from tests.unit.conftest import make_queue

    adopter = make_queue(redis_url, queue.run + "-adopted")
    source = f"job2-{queue.run}"
    queue.client.rpush(source, *range(100))
    before = command_calls(queue)
    assert adopt_list(adopter, source).total == 100  # unlinks the list
    seed(queue, list(range(100)))
    late = queue.keys.staging_items("late")
    queue.seeding.stage_items(late, [encode("x")] * 100, 32)
    # Already seeded: the commit drops the staging.
    assert queue.seeding.commit_seed(late, 100, layout.KIND_LIST, 0, 1, "digest") is False
    assert queue.admin.purge() > 0
    assert adopter.admin.purge() > 0
    calls = command_calls(queue) - before
    assert calls["del"] == 0
    assert calls["unlink"] >= 4
    adopter.close()


def test_named_keys_are_every_key_of_a_run() -> None:
    """purge removes `named` in one call: a key added to RunKeys and forgotten there would
    outlive its run, or be seen by a worker without the rest of the run."""
    keys = RunKeys("r")
    properties = [
        name
        for name, value in vars(RunKeys).items()
        if isinstance(value, property) and name not in ("named", "pattern")
    ]
    assert sorted(keys.named) == sorted(getattr(keys, name) for name in properties)


def test_every_key_of_a_run_shares_one_cluster_slot(queue: RunQueue) -> None:
    """Multi-key Lua scripts need all their keys in one slot on a Redis Cluster."""
    from redis.crc import key_slot

    k = queue.keys
    names = [k.meta, k.items, k.requeue, k.leases, k.attempts, k.ledger, k.dead, k.errors]
    names.append(k.staging_items("abc"))
    slots = {key_slot(name.encode()) for name in names}
    # The hash tag is the run id itself: every key hashes like the bare run id.
    assert slots == {key_slot(queue.run.encode())}


def test_a_scaling_decision_is_recorded_only_while_the_run_exists(queue: RunQueue) -> None:
    assert queue.reading.scaling() is None
    assert queue.admin.record_scaling("r-worker", 3, 5, "more work") is False  # not seeded yet
    assert not queue.client.exists(queue.keys.scaling)
    seed(queue, ["a"])
    assert queue.admin.record_scaling("r-worker", 3, 5, "more work") is True
    record = queue.reading.scaling()
    assert record is not None
    assert (record.job, record.current, record.target, record.reason) == (
        "r-worker",
        3,
        5,
        "more work",
    )
    redis_ms = int(queue.client.time()[0]) * 1000
    assert redis_ms - 5000 <= record.at_ms <= redis_ms + 1000
    queue.admin.purge()
    # A purged run: no stray key.
    assert queue.admin.record_scaling("r-worker", 5, 5, "late") is False
    assert queue.client.exists(queue.keys.scaling) == 0


def test_a_scaling_decision_expires_with_a_drained_run(queue: RunQueue) -> None:
    seed(queue, ["a"])
    assert queue.admin.record_scaling("r-worker", 1, 1, "tail") is True
    [item] = queue.leases.lease(1, 30, "t").items
    assert queue.leases.complete("t", "w", [item.position]) == []
    assert queue.admin.expire_results(3600)
    assert 0 < queue.client.pttl(queue.keys.scaling) <= 3600_000
    assert queue.admin.record_scaling("r-worker", 1, 1, "drained") is True  # keeps the run's expiry
    assert 0 < queue.client.pttl(queue.keys.scaling) <= 3600_000
    queue.admin.keep_results()
    assert queue.admin.record_scaling("r-worker", 1, 1, "retried") is True
    assert queue.client.pttl(queue.keys.scaling) == -1
