"""Runs sharded over sub-runs (`wq seed --shards N`) on a real redis-server: a range seeded
once in blocks, listed and streamed items in stripes, drained by workers that start on shards
of their own, and read by every command as one run, in seed order. On a Redis Cluster:
tests/unit/test_cluster.py."""

import json
import random
import subprocess
from pathlib import Path

import pytest
import redis

from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.conftest import make_queue
from tests.unit.test_exporter import collector_for, scrape
from wq.base.errors import ShardedRunError
from wq.read.page_data import PageData
from wq.seed.sharding import _stripes
from wq.store import layout, shard_layout
from wq.store.connection import RedisSettings
from wq.store.keys import RunKeys
from wq.store.survey import find_runs
from wq.work.shard_walk import home_first

TOTAL = 6000
DEAD = [7, 1007, 2007, 3007, 4007, 5007]  # double_but_7s fails on these
HANDLER = ("--handler", "python", "--python", "tests.unit.sample_handlers:double_but_7s")


def env_of(redis_url: str, run_id: str, **extra: str) -> dict[str, str]:
    return {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id, **extra}


def run_keys(client: "redis.Redis", run_id: str) -> set[str]:
    """Every key of the run and of its shards."""
    return set(client.scan_iter(match=f"wq:{{{run_id}[}}/]*"))


def shard_totals(client: "redis.Redis", run_id: str) -> list[int]:
    """The items each shard of a run holds, in shard order."""
    runs = client.hget(RunKeys(run_id).meta, "shard_runs").split(",")
    return [int(client.hget(RunKeys(run).meta, "total")) for run in runs]


def test_a_sharded_range_run_is_seeded_once_in_blocks(
    redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    env = env_of(redis_url, run_id)
    seeded = wq("seed", "--range", "5:10005:2", "--shards", "3", env=env)
    assert seeded.returncode == 0, seeded.stderr
    directory = client.hgetall(RunKeys(run_id).meta)
    assert (directory["format"], directory["shards"], directory["total"]) == ("6", "3", "5000")
    # What a wq that knows no shards reads: a format it refuses.
    assert directory["format"] not in layout.READABLE_FORMATS
    # The digest is the run's items', as if unsharded.
    assert directory["digest"] == wq("digest", "--range", "5:10005:2").stdout.strip()
    runs = directory["shard_runs"].split(",")
    assert len(set(runs)) == 3
    shards = [client.hgetall(RunKeys(run).meta) for run in runs]
    assert [(int(s["total"]), int(s["range_start"])) for s in shards] == [
        (1666, 5),
        (1667, 5 + 1666 * 2),
        (1667, 5 + 3333 * 2),
    ]
    assert {s["format"] for s in shards} == {layout.STORAGE_FORMAT}
    # What lists a Redis' runs (the exporter, the page) finds the run, never its shards.
    found = find_runs(client)
    assert run_id in found
    assert not set(runs) & found

    again = wq("seed", "--range", "5:10005:2", "--shards", "3", env=env)
    assert again.returncode == 0, again.stderr
    assert "outcome=already_seeded" in again.stderr
    other = wq("seed", "--range", "5:10005:2", "--shards", "2", env=env)
    assert other.returncode == 2
    assert "already seeded in 3 shard(s), not 2" in other.stderr


def test_listed_and_streamed_items_are_dealt_to_the_shards_a_stripe_at_a_time(
    redis_url: str, run_id: str, client: "redis.Redis", tmp_path: Path
) -> None:
    items = [json.dumps({"n": n, "pad": "x" * (n % 50)}) for n in range(5000)]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(items) + "\n")
    env = env_of(redis_url, run_id)
    seeded = wq("seed", "--items-file", str(path), "--shards", "3", env=env)
    assert seeded.returncode == 0, seeded.stderr
    directory = client.hgetall(RunKeys(run_id).meta)
    assert (directory["kind"], directory["shard_layout"], directory["total"]) == (
        "list",
        "stripes",
        "5000",
    )
    assert directory["digest"] == wq("digest", "--items-file", str(path)).stdout.strip()
    # Stripes of 1024 in turn: shard 0 holds stripes 0 and 3, shard 1 stripes 1 and 4 (904
    # items), shard 2 stripe 2.
    assert shard_totals(client, run_id) == [2048, 1928, 1024]
    report = [json.loads(line) for line in wq("report", env=env).stdout.splitlines()]
    assert [r["position"] for r in report] == list(range(5000))
    assert [json.dumps(r["item"]) for r in report] == items

    # A retry is a no-op; other items or another shard count are refused.
    assert (
        "outcome=already_seeded"
        in wq("seed", "--items-file", str(path), "--shards", "3", env=env).stderr
    )
    for args, says in (
        (["--items-file", str(path), "--shards", "2"], "already seeded in 3 shard(s), not 2"),
        (["a", "--shards", "3"], "already seeded with different items"),
    ):
        refused = wq("seed", *args, env=env)
        assert refused.returncode == 2, refused.stderr
        assert says in refused.stderr

    # The same items streamed from standard input make the same run.
    streamed = env_of(redis_url, f"{run_id}-stdin")
    from_stdin = wq(
        "seed",
        "--items-from",
        "-",
        "--format",
        "jsonl",
        "--shards",
        "3",
        env=streamed,
        stdin="\n".join(items),
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert client.hget(RunKeys(f"{run_id}-stdin").meta, "digest") == directory["digest"]


def test_a_sharded_source_that_fails_half_way_seeds_nothing(
    redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    # Enough items that every shard has staged some when the bad line is read.
    lines = "".join(f"{n}\n" for n in range(40000)) + "{not json\n"
    env = env_of(redis_url, run_id)
    failed = wq(
        "seed", "--items-from", "-", "--format", "jsonl", "--shards", "3", env=env, stdin=lines
    )
    assert failed.returncode == 2, failed.stderr
    assert "line 40001 is not valid JSON" in failed.stderr
    assert run_keys(client, run_id) == set(), "no shard and no staging hash is left"


def test_shards_take_a_range_or_listed_items_and_no_more_shards_than_items(
    redis_url: str, run_id: str
) -> None:
    env = env_of(redis_url, run_id)
    for args, says in (
        (["--adopt-list", "l", "--shards", "2"], "--shards takes --range or listed items"),
        (["--range", "0:10", "--shards", "2", "--open"], "a sharded open run starts empty"),
        (["--range", "0:2", "--shards", "3"], "--shards 3 is more shards than the run's 2"),
        (["--range", "0:10", "--shards", "0"], "--shards'"),
        (["--range", "0:10", "--shards", "0"], "0 is not in the range 1 to 1024"),
    ):
        result = wq("seed", *args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert says in line, line


def test_one_shard_is_todays_layout(redis_url: str, run_id: str, client: "redis.Redis") -> None:
    metas = []
    for run, extra in ((f"{run_id}-a", []), (f"{run_id}-b", ["--shards", "1"])):
        assert wq("seed", "--range", "0:100", *extra, env=env_of(redis_url, run)).returncode == 0
        meta = client.hgetall(RunKeys(run).meta)
        del meta["seeded"]  # a time
        metas.append(meta)
        assert run_keys(client, run) == {RunKeys(run).meta}
    assert metas[0] == metas[1]
    assert metas[0]["format"] == layout.STORAGE_FORMAT


@pytest.mark.parametrize("source", ["range", "listed"])
def test_workers_drain_every_shard_and_every_command_reads_the_run_as_one(
    redis_url: str, run_id: str, client: "redis.Redis", tmp_path: Path, source: str
) -> None:
    env = env_of(redis_url, run_id, WQ_TEST_LOG_DIR=str(tmp_path), WQ_MAX_ATTEMPTS="1")
    items = tmp_path / "items.jsonl"
    items.write_text("".join(f"{n}\n" for n in range(TOTAL)))
    args = ["--range", f"0:{TOTAL}"] if source == "range" else ["--items-file", str(items)]
    assert wq("seed", *args, "--shards", "3", env=env).returncode == 0
    workers = [
        subprocess.Popen(
            wq_argv("work", *HANDLER),
            env=wq_env({**env, "WQ_WORKER_ID": f"w{n}"}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    # Every item ran once, wherever it was.
    ran = [int(v) for log in tmp_path.glob("*.log") for v in log.read_text().split()]
    assert sorted(ran) == [p for p in range(TOTAL) if p not in DEAD]

    status = json.loads(wq("status", "--json", env=env).stdout)
    assert (status["state"], status["shards"], status["total"]) == (
        "drained with dead items",
        3,
        TOTAL,
    )
    assert (status["done"], status["dead"], status["pending"], status["in_flight"]) == (
        TOTAL - len(DEAD),
        len(DEAD),
        0,
        0,
    )
    assert status["rate"] > 0
    checked = wq("status", "--check", env=env)
    assert checked.returncode == 1, checked.stdout  # dead items: not clean
    assert f"every position accounted for once: {TOTAL - len(DEAD)} done + 6 dead" in checked.stdout

    report = wq("report", env=env)
    records = [json.loads(line) for line in report.stdout.splitlines()]
    assert [r["position"] for r in records] == list(range(TOTAL)), "seed order, once each"
    assert [r["item"] for r in records] == list(range(TOTAL))
    assert [r["output"] for r in records if r["state"] == "done"] == [
        2 * p for p in range(TOTAL) if p not in DEAD
    ]
    assert {r["worker"] for r in records if r["state"] == "done"} <= {"w0", "w1", "w2"}
    assert [r["position"] for r in records if r["state"] == "dead"] == DEAD

    # The web page reads it as one run too: counts, timeline, dead items, a search by the
    # run's position (not the shard's), and the run's directory is never read item by item.
    page = PageData(RedisSettings.from_url(redis_url), (run_id,))
    try:
        assert page.status(run_id)["shards"] == 3
        assert sum(page.timeline(run_id)["counts"]) == TOTAL
        assert [d["position"] for d in page.dead(run_id)["items"]] == DEAD
        found = page.search(run_id, "5999")["matches"]
        assert [(m["position"], m["output"]) for m in found] == [(5999, 11998)]
        with pytest.raises(ShardedRunError):
            page.queue(run_id).reading.window(0)
    finally:
        page.close()

    dead = wq("dead", env=env)
    assert [int(line.split("\t")[0]) for line in dead.stdout.splitlines()] == DEAD
    assert "1007 ends in 007" in dead.stdout

    # The keys expire with the results, shards and all; retry-dead takes the expiry away.
    assert all(client.ttl(key) > 0 for key in run_keys(client, run_id))
    retried = wq("retry-dead", env=env)
    assert f"requeued {len(DEAD)} dead item(s)" in retried.stdout
    assert all(client.ttl(key) == -1 for key in run_keys(client, run_id))
    assert json.loads(wq("status", "--json", env=env).stdout)["pending"] == len(DEAD)

    assert wq("purge", "--yes", env=env).returncode == 0
    assert run_keys(client, run_id) == set()


def test_a_lease_left_by_a_dead_worker_on_a_shard_is_taken_back(
    redis_url: str, run_id: str
) -> None:
    env = env_of(redis_url, run_id, WQ_LEASE="1")
    assert wq("seed", "--range", "0:3000", "--shards", "3", env=env).returncode == 0
    queue = make_queue(redis_url, run_id)
    try:
        middle = queue.shard(queue.shard_runs()[1])
        held = middle.leases.lease(50, 1.0, "a-worker-that-died").items
        assert len(held) == 50
    finally:
        queue.close()
    worked = wq("work", "--handler", "demo", "--demo-sleep", "0", env=env, timeout=120)
    assert worked.returncode == 0, worked.stderr
    checked = wq("status", "--check", env=env)
    assert checked.returncode == 0, checked.stdout
    assert "every position accounted for once: 3000 done + 0 dead = 3000 total" in checked.stdout


def test_a_shard_whose_keys_are_gone_is_a_lost_run(
    redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    env = env_of(redis_url, run_id)
    assert wq("seed", "--range", "0:30", "--shards", "3", env=env).returncode == 0
    lost = client.hget(RunKeys(run_id).meta, "shard_runs").split(",")[2]
    client.delete(RunKeys(lost).meta)
    status = wq("status", env=env)
    assert status.returncode == 4, status.stderr
    assert "its keys are gone" in status.stderr
    worked = wq("work", "--handler", "demo", "--demo-sleep", "0", env=env)
    assert worked.returncode == 4, worked.stderr
    # The exporter and the page show it lost, and go on showing the other runs.
    other = f"{run_id}-other"
    assert wq("seed", "a", env=env_of(redis_url, other)).returncode == 0
    collector = collector_for(redis_url, (run_id, other))
    try:
        exposition = scrape(collector)
    finally:
        collector.close()
    assert exposition.up == 1
    assert exposition.run(run_id)["wq_run_lost"] == 1
    assert exposition.run(other)["wq_items{state=pending}"] == 1
    page = PageData(RedisSettings.from_url(redis_url), (run_id, other))
    try:
        listed = {r["run"]: r for r in page.list_runs()}
    finally:
        page.close()
    assert listed[run_id]["state"] == "lost"
    assert "its keys are gone" in listed[run_id]["error"]
    assert listed[other]["pending"] == 1
    # purge deletes what is left of it (other tests list every run of this Redis).
    assert wq("purge", "--yes", env=env).returncode == 0
    assert run_keys(client, run_id) == set()


def test_items_a_dead_worker_held_are_taken_over_before_the_home_shard_is_done(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    # Three shards of 2,000 items of 10 ms: the worker's home shard alone takes 20 s at least.
    env = env_of(redis_url, run_id, WQ_LEASE="1", WQ_TEST_SLEEP="0.01")
    env |= {"WQ_WORKER_ID": "w-orphans", "WQ_TEST_LOG_DIR": str(tmp_path)}
    assert wq("seed", "--range", "0:6000", "--shards", "3", env=env).returncode == 0
    queue = make_queue(redis_url, run_id)
    home, _, last = home_first(queue.shard_runs(), "w-orphans")
    # A worker that died on the shard this one would reach last, holding 50 items.
    orphaned = queue.shard(last)
    held = [i.position for i in orphaned.leases.lease(50, 1.0, "a-worker-that-died").items]
    worker = subprocess.Popen(
        wq_argv("work", "--handler", "python", "--python", "tests.unit.sample_handlers:record"),
        env=wq_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            "the dead worker's items done",
            lambda: orphaned.reading.status().done >= len(held),
            60,
            interval=0.1,
        )
        assert queue.shard(home).reading.status().pending > 0, "taken over first"
    finally:
        worker.terminate()
        _, err = worker.communicate(timeout=60)
        queue.close()
    assert worker.returncode == 143, err
    assert "event=shard.orphaned" in err


def test_wq_reap_reclaims_the_expired_leases_of_every_shard(redis_url: str, run_id: str) -> None:
    env = env_of(redis_url, run_id)
    assert wq("seed", "--range", "0:300", "--shards", "3", env=env).returncode == 0
    queue = make_queue(redis_url, run_id)
    try:
        for run in queue.shard_runs():
            assert len(queue.shard(run).leases.lease(10, 0.05, f"died-on-{run}").items) == 10
        seen: list[str] = []

        def requeued() -> int:
            return sum(int(said.split()[1].rstrip(",")) for said in seen)

        def all_reaped() -> bool:
            seen.append(wq("reap", env=env).stdout.strip())
            return requeued() >= 30

        wait_until(lambda: f"wq reap to requeue 30; it said {seen}", all_reaped, 30, interval=0.1)
        assert requeued() == 30, seen
        assert json.loads(wq("status", "--json", env=env).stdout)["in_flight"] == 0
    finally:
        queue.close()


@pytest.mark.parametrize("source", ["range", "listed"])
def test_a_command_sees_the_runs_position_not_its_shards(
    redis_url: str, run_id: str, tmp_path: Path, source: str
) -> None:
    """WQ_ITEM_POSITION (and the log's [item N]) is where the item is in the run: a command
    that writes out/$WQ_ITEM_POSITION never overwrites another item's file."""
    env = env_of(redis_url, run_id)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(f"{n}\n" for n in range(3000)))
    args = ["--range", "0:3000"] if source == "range" else ["--items-file", str(items)]
    assert wq("seed", *args, "--shards", "3", env=env).returncode == 0
    seen = tmp_path / "seen"
    script = f'echo "$WQ_ITEM_POSITION $WQ_ITEM" >> {seen}; echo done'
    worked = wq("work", "--handler", "command", "--", "sh", "-c", script, env=env, timeout=120)
    assert worked.returncode == 0, worked.stderr
    pairs = [line.split() for line in seen.read_text().splitlines()]
    assert sorted(int(position) for position, _ in pairs) == list(range(3000))
    assert all(position == item for position, item in pairs), "the item at its run position"
    assert "[item 2999] done" in worked.stdout


def test_stripes_cut_any_batches_into_whole_stripes_in_order() -> None:
    """What the seeder deals to the shards: the items in order, every stripe whole but the
    last, whatever batches the source gave (an items file is one batch of all its items)."""
    rng = random.Random(7)
    for _ in range(200):
        batches = [
            [f"{b}.{i}" for i in range(rng.choice([0, 1, 1023, 1024, 1025, rng.randrange(5000)]))]
            for b in range(rng.randrange(6))
        ]
        stripes = list(_stripes(iter(batches)))
        assert [item for stripe in stripes for item in stripe] == [i for b in batches for i in b]
        assert all(len(stripe) == shard_layout.STRIPE for stripe in stripes[:-1])
        assert all(stripes), "no empty stripe"
