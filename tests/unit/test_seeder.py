"""Seeding: atomic, idempotent, order- and content-preserving; ranges and adopted lists."""

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.unit.conftest import drain, make_queue
from wq.base.errors import ConfigError, SourceChanged
from wq.base.item import encode
from wq.seed.items_source import ItemRange
from wq.seed.seeder import Adoption, adopt_list, seed_items, seed_range, staged_groups
from wq.store import layout
from wq.store.local_redis import RedisServer
from wq.store.queue import RunQueue

ODD = ["a,b", 'say "hi"', "line1\nline2", "tab\there", "😀 emoji", "", " ", "\\", "{{ x }}"]


def test_items_come_back_unchanged_and_in_order(queue: RunQueue) -> None:
    structured = [{"src": "a.png", "dst": "a.jpg"}, [1, 2], 3.5, None, True]
    assert seed_items(queue, [encode(v) for v in ODD + structured]).total == 14
    assert drain(queue) == ODD + structured


# Around the boundaries of an items-hash field (32 items; layout.choose_chunk's count past
# 1,024 items), of one HSET (64 fields) and of one staging round trip (16 HSETs).
@pytest.mark.parametrize("n", [31, 32, 33, 32 * 64 + 1, 32 * 64 * 16 + 5])
def test_every_item_comes_back_across_storage_boundaries(queue: RunQueue, n: int) -> None:
    assert seed_items(queue, [encode(f"i{k}") for k in range(n)]).total == n
    assert drain(queue) == [f"i{k}" for k in range(n)]


def test_duplicates_are_separate_items(queue: RunQueue) -> None:
    seed_items(queue, [encode("same")] * 3)
    items = queue.leases.lease(10, 30, "t").items
    assert [i.position for i in items] == [0, 1, 2]
    assert queue.leases.complete("t", "w", [0, 1, 2]) == []
    assert queue.reading.status().done == 3


def test_seeding_twice_does_not_double_seed(queue: RunQueue) -> None:
    first = seed_items(queue, [encode("a"), encode("b")])
    second = seed_items(queue, [encode("a"), encode("b")])
    assert (first.seeded_now, first.total) == (True, 2)
    assert (second.seeded_now, second.total) == (False, 2)
    assert drain(queue) == ["a", "b"]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def list_digest(values: list[object]) -> str:
    """The digest of a list run as wq/layout.py defines it, computed the plain way."""
    return sha256("".join(encode(v) + "\n" for v in values))


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 100])
def test_a_list_run_records_the_digest_of_its_items(queue: RunQueue, n: int) -> None:
    values: list[object] = [*ODD, {"src": "a.png"}, [1, 2], 3.5, None, *range(n)][:n]
    result = seed_items(queue, [encode(v) for v in values])
    assert result.digest == list_digest(values)
    assert queue.reading.status().digest == list_digest(values)


def test_a_range_run_records_the_digest_of_its_bounds(queue: RunQueue) -> None:
    # START, the end just after the last item, and STEP: 0:10:3 and 0:12:3 are the same items.
    assert seed_range(queue, ItemRange.parse("0:10:3")).digest == sha256("range 0 12 3")
    assert queue.reading.status().digest == sha256("range 0 12 3")
    assert seed_range(queue, ItemRange.parse("0:12:3")).seeded_now is False


def test_an_adopted_list_records_the_digest_of_a_list_run_of_its_values(
    queue: RunQueue, client: "redis.Redis"
) -> None:
    source = f"job2-{queue.run}"
    values = ["apple", "a/b", "ünï", 'say "hi"', *[f"i{k}" for k in range(70)]]
    client.rpush(source, *values)
    assert adopt_list(queue, source, step=32).digest == list_digest(values)
    assert queue.reading.status().digest == list_digest(values)


def test_seeding_again_with_other_items_is_an_error_naming_both_digests(
    queue: RunQueue, client: "redis.Redis"
) -> None:
    first = seed_items(queue, [encode("a"), encode("b")])
    assert first.digest is not None
    again = seed_items(queue, [encode("a"), encode("b")])
    assert (again.seeded_now, again.digest) == (False, first.digest)
    other = list_digest(["a", "c"])
    message = (
        f"run {queue.run} was already seeded with different items "
        f"(digest {first.digest[:12]}..., these are {other[:12]}...)"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        seed_items(queue, [encode("a"), encode("c")])
    with pytest.raises(ConfigError, match="already seeded with different items"):
        seed_items(queue, [encode("a")])
    with pytest.raises(ConfigError, match="already seeded with different items"):
        seed_range(queue, ItemRange.parse("0:2"))
    source = f"job2-{queue.run}"
    client.rpush(source, "a", "c")
    with pytest.raises(ConfigError, match="already seeded with different items"):
        adopt_list(queue, source)
    assert client.llen(source) == 2  # left alone
    client.delete(source)
    client.rpush(source, "a", "b")
    assert adopt_list(queue, source).seeded_now is False  # the same items
    client.delete(source)
    assert drain(queue) == ["a", "b"]


def test_a_range_run_seeded_again_with_another_range_is_an_error(queue: RunQueue) -> None:
    seed_range(queue, ItemRange.parse("0:10"))
    with pytest.raises(ConfigError, match="already seeded with different items"):
        seed_range(queue, ItemRange.parse("0:11"))
    with pytest.raises(ConfigError, match="already seeded with different items"):
        seed_items(queue, [encode(i) for i in range(10)])


def test_a_retry_racing_an_unfinished_seeder_commits_once(queue: RunQueue) -> None:
    # Seeder A dies after staging; seeder B (its retry) stages and commits; A's staging
    # must not be visible and must expire.
    dead_staging = queue.keys.staging_items("dead")
    queue.seeding.stage_items(dead_staging, [encode("stale")] * 5, 32)
    assert not queue.reading.is_seeded()
    assert queue.leases.lease(10, 30, "t").items == []  # nothing visible before the commit
    seed_items(queue, [encode("good")])
    assert queue.seeding.commit_seed(dead_staging, 5, "list", 0, 1, "digest") is False
    assert drain(queue) == ["good"]
    assert queue.client.exists(dead_staging) == 0


def test_staging_expires_if_the_seeder_dies(queue: RunQueue) -> None:
    staging = queue.keys.staging_items("orphan")
    queue.seeding.stage_items(staging, [encode("x")], 32)
    assert 0 < queue.client.ttl(staging) <= 3600


def test_empty_run_is_drained_at_once(queue: RunQueue) -> None:
    assert seed_items(queue, []).total == 0
    reply = queue.leases.lease(10, 30, "t")
    assert reply.seeded
    assert reply.drained
    assert queue.reading.status().clean


def test_range_run_computes_items_without_storing_them(queue: RunQueue) -> None:
    seed_range(queue, ItemRange.parse("10:20:3"))
    assert queue.client.exists(queue.keys.items) == 0
    assert drain(queue) == [10, 13, 16, 19]


def test_range_negative_step(queue: RunQueue) -> None:
    seed_range(queue, ItemRange.parse("5:0:-2"))
    assert drain(queue) == [5, 3, 1]


def test_adopt_a_list_filled_by_hand_as_in_the_kubernetes_docs(
    queue: RunQueue, client: "redis.Redis"
) -> None:
    source = f"job2-{queue.run}"
    client.rpush(source, "apple", "banana", "cherry", "a/b", "ünï")
    assert adopt_list(queue, source).total == 5
    assert client.exists(source) == 0
    assert adopt_list(queue, source).seeded_now is False  # a retry after the commit
    client.rpush(source, "late")
    with pytest.raises(ConfigError, match="already seeded with different items"):
        adopt_list(queue, source)
    assert drain(queue) == ["apple", "banana", "cherry", "a/b", "ünï"]
    client.delete(source)


@pytest.mark.parametrize(("n", "window"), [(1, 32), (31, 32), (32, 32), (33, 32), (200, 64)])
def test_adopt_copies_a_list_in_windows_keeping_every_item_in_order(
    queue: RunQueue, client: "redis.Redis", n: int, window: int
) -> None:
    source = f"job2-{queue.run}"
    client.rpush(source, *[f"i{k}" for k in range(n)])
    assert adopt_list(queue, source, step=window).total == n
    assert client.exists(source) == 0
    assert list(client.scan_iter(match=queue.keys.staging_items("*"))) == []
    assert drain(queue) == [f"i{k}" for k in range(n)]


def test_a_half_adopted_list_is_invisible_to_workers(
    queue: RunQueue, client: "redis.Redis"
) -> None:
    source = f"job2-{queue.run}"
    client.rpush(source, *[f"i{k}" for k in range(100)])
    adoption = Adoption(queue, source, step=32)
    steps, more = 0, True
    while more:
        more = adoption.step()
        steps += 1
        # A worker polling between two windows: not seeded, nothing to lease, not drained.
        reply = queue.leases.lease(10, 30, f"w{steps}")
        assert (reply.seeded, reply.items, reply.drained) == (False, [], False)
        assert queue.reading.status().total == 0
        assert client.llen(source) == 100  # the list stays whole until the commit
    assert steps == 4
    assert adoption.commit().total == 100
    assert client.exists(source) == 0
    assert drain(queue) == [f"i{k}" for k in range(100)]


def test_adopting_a_list_that_grows_meanwhile_is_refused_at_the_commit(
    queue: RunQueue, client: "redis.Redis"
) -> None:
    source = f"job2-{queue.run}"
    client.rpush(source, *[f"i{k}" for k in range(40)])
    adoption = Adoption(queue, source, step=32)
    assert adoption.step()
    client.rpush(source, "late")
    assert not adoption.step()  # copies the 40 items the list held at the start
    with pytest.raises(SourceChanged, match=f"list '{source}' changed length while it was"):
        adoption.commit()
    assert_nothing_adopted(queue, client, source, [f"i{k}" for k in range(40)] + ["late"])


def test_adopting_a_list_that_shrinks_meanwhile_is_refused_at_once(
    queue: RunQueue, client: "redis.Redis"
) -> None:
    source = f"job2-{queue.run}"
    client.rpush(source, *[f"i{k}" for k in range(40)])
    adoption = Adoption(queue, source, step=32)
    assert adoption.step()
    client.lpop(source)
    with pytest.raises(SourceChanged, match=f"list '{source}' shrank while it was"):
        adoption.step()
    assert_nothing_adopted(queue, client, source, [f"i{k}" for k in range(1, 40)])


def assert_nothing_adopted(
    queue: RunQueue, client: "redis.Redis", source: str, left: list[str]
) -> None:
    """The run is not seeded, no staging is left, the list is as it was; adopting it again
    works."""
    assert not queue.reading.is_seeded()
    assert list(client.scan_iter(match=queue.keys.staging_items("*"))) == []
    assert client.lrange(source, 0, -1) == left
    assert adopt_list(queue, source).total == len(left)
    assert drain(queue) == left


def test_adopting_a_missing_list_is_an_error_not_an_empty_run(queue: RunQueue) -> None:
    source = f"job2-{queue.run}"
    with pytest.raises(ConfigError, match=f"list '{source}' is empty or does not exist"):
        adopt_list(queue, source)
    assert not queue.reading.is_seeded()


@pytest.mark.parametrize(
    ("fill", "message"),
    [
        (lambda c, key: c.set(key, "x"), "key '{key}' holds a string, not a list"),
        (lambda c, key: c.hset(key, "a", "b"), "key '{key}' holds a hash, not a list"),
        (
            lambda c, key: c.rpush(key, "fine", b"\xff\xfe"),
            "list '{key}' holds an item that is not UTF-8 text (item 1, counting from 0)",
        ),
    ],
)
def test_adopting_what_is_not_a_list_of_text_is_an_error(
    queue: RunQueue,
    client: "redis.Redis",
    fill: Callable[["redis.Redis", str], object],
    message: str,
) -> None:
    source = f"job2-{queue.run}"
    fill(client, source)
    with pytest.raises(ConfigError, match=re.escape(message.format(key=source))):
        adopt_list(queue, source)
    assert not queue.reading.is_seeded()
    assert client.exists(source) == 1
    client.delete(source)


def test_one_million_range_items_seed_instantly(queue: RunQueue) -> None:
    seed_range(queue, ItemRange.parse("0:1000000"))
    status = queue.reading.status()
    assert (status.total, status.pending) == (1_000_000, 1_000_000)


def test_items_are_stored_as_json_text(queue: RunQueue, client: "redis.Redis") -> None:
    seed_items(queue, [encode({"k": "ü"})])
    assert json.loads(client.hget(queue.keys.items, "0") or "") == {"k": "ü"}


@pytest.mark.parametrize("size", [16, 64, 256])
def test_a_pending_item_costs_redis_its_bytes_and_a_few_more(tmp_path: Path, size: int) -> None:
    """The items per field are chosen from the items' sizes so that fields fill the
    allocator's size classes: a pending item costs at most its bytes + 8 (`make scale` (b)
    measures 1M items). 32 to a field cost 256-byte items 65 bytes more each. A Redis of its
    own, so that no other test's keys grow the keyspace meanwhile."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        client = server.connect()
        n = 50_000
        items = [encode(f"{k:0{size}d}") for k in range(n)]
        seed_items(make_queue(server.url, "warm"), items[:10])  # the scripts, loaded once
        queue = make_queue(server.url, "sized")
        before = int(client.info("memory")["used_memory"])
        seed_items(queue, items)
        per_item = (int(client.info("memory")["used_memory"]) - before) / n
        assert per_item <= size + 8, (per_item, client.hget(queue.keys.meta, layout.CHUNK))
        assert drain(queue)[::9999] == [f"{k:0{size}d}" for k in range(0, n, 9999)]
    finally:
        server.stop()


def test_streaming_windows_start_fields_and_hold_every_item_once() -> None:
    """Windows are whole fields of the run's one chunk size, bounded in items and bytes."""
    items = [encode("x" * (k % 300)) for k in range(20_000)]
    batches = [items[i : i + 777] for i in range(0, len(items), 777)]
    windows = list(staged_groups(batches, most=4096, most_bytes=300_000))
    chunks = {chunk for chunk, _ in windows}
    assert len(chunks) == 1
    [chunk] = chunks
    # The sample is the first window, cut by bytes here: the batches up to 300,000 bytes.
    sampled = next(i for i in range(0, len(items), 777) if sum(map(len, items[:i])) >= 300_000)
    assert chunk == layout.choose_chunk(items[:sampled])
    [(by_count, _), *_] = staged_groups(batches, most=4096, most_bytes=10**9)
    assert by_count == layout.choose_chunk(items[:4096])
    assert [item for _, window in windows for item in window] == items
    for _, window in windows[:-1]:
        assert len(window) % chunk == 0
        assert len(window) <= 4096
        assert sum(map(len, window)) <= 300_000 + 777 * 302
    assert len(windows) > -(-len(items) // 4096)  # the bytes bound cut more than the count


@pytest.mark.parametrize("size", [1, 40, 700, 4000, 70_000])
def test_fields_stay_small_enough_to_lease(size: int) -> None:
    """A lease reads whole fields: whatever the items, a field holds at most MAX_CHUNK items
    and, unless one item alone is bigger, at most MAX_FIELD_BYTES."""
    items = [encode("x" * size)] * 2000
    chunk = layout.choose_chunk(items)
    assert 1 <= chunk <= layout.MAX_CHUNK
    assert chunk == 1 or chunk * (size + 3) <= layout.MAX_FIELD_BYTES


def test_small_runs_keep_32_items_per_field() -> None:
    assert layout.choose_chunk([encode(str(k)) for k in range(layout.CHUNK_SAMPLE_MIN - 1)]) == 32
