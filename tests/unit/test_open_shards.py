"""Open runs sharded over sub-runs (`wq seed --open|--append|--progressive --shards N`) on a
real redis-server: appends dealt to the shards a stripe at a time while a worker drains them,
appenders at once each getting their items in once, and a chunk half in when its seeder died
adopted by the next appender (tests/unit/test_progressive.py: completed once by a progressive
seeder's retry)."""

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.conftest import make_queue
from tests.unit.test_shards import shard_totals
from wq.base.errors import AppendLockBusy, AppendLockLost
from wq.seed.open_shards import _append_piece
from wq.store import shard_layout
from wq.store.keys import RunKeys


def env_of(redis_url: str, run_id: str) -> dict[str, str]:
    return {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}


def status_of(redis_url: str, run_id: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(
        wq("status", "--json", env=env_of(redis_url, run_id)).stdout
    )
    return result


def report_items(redis_url: str, run_id: str) -> list[object]:
    report = wq("report", env=env_of(redis_url, run_id)).stdout.splitlines()
    records = [json.loads(line) for line in report]
    assert [r["position"] for r in records] == list(range(len(records)))
    return [r["item"] for r in records]


def test_a_sharded_open_run_takes_appends_while_a_worker_drains_it(
    redis_url: str, run_id: str, client: "redis.Redis", tmp_path: Path
) -> None:
    env = env_of(redis_url, run_id)
    opened = wq("seed", "--open", "--shards", "3", env=env)
    assert opened.returncode == 0, opened.stderr
    directory = client.hgetall(RunKeys(run_id).meta)
    assert (directory["shards"], directory["shard_layout"], directory["open"]) == (
        "3",
        "stripes",
        "1",
    )
    assert "outcome=already_seeded" in wq("seed", "--open", "--shards", "3", env=env).stderr
    fresh = env_of(redis_url, f"{run_id}-fresh")  # a run not seeded yet
    for args, run_env, says in (
        (["--open", "--shards", "2"], env, "already seeded in 3 shard(s), not 2"),
        (["--append", "x", "--shards", "2"], env, "already seeded in 3 shard(s), not 2"),
        (["--open", "--shards", "3", "a"], fresh, "a sharded open run starts empty"),
    ):
        refused = wq("seed", *args, env=run_env)
        assert refused.returncode == 2, refused.stderr
        assert says in refused.stderr

    # One worker: it must find each append's items on whichever shard they went to.
    seen = tmp_path / "seen"
    script = f'echo "$WQ_ITEM_POSITION $WQ_ITEM" >> {seen}'
    with subprocess.Popen(
        wq_argv("work", "--handler", "command", "--poll", "0.05", "--", "sh", "-c", script),
        env=wq_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as worker:
        for start in (0, 2500):
            lines = "".join(f"{n}\n" for n in range(start, start + 2500))
            added = wq(
                "seed", "--append", "--items-from", "-", "--format", "jsonl", env=env, stdin=lines
            )
            assert added.returncode == 0, added.stderr
            wait_until(
                f"the worker to do items 0 .. {start + 2499} before the seal",
                lambda end=start + 2500: status_of(redis_url, run_id)["done"] == end or None,
                60,
            )
        assert worker.poll() is None, "an open run's worker waits for more"
        sealed = wq("seal", env=env)
        assert sealed.returncode == 0, sealed.stderr
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
    stdin = "".join(f"{n}\n" for n in range(5000))
    digest = wq("digest", "--items-from", "-", "--format", "jsonl", stdin=stdin).stdout.strip()
    assert f"5000 item(s), digest {digest}" in sealed.stdout
    assert shard_totals(client, run_id) == [2048, 1928, 1024]  # as if seeded at once
    assert report_items(redis_url, run_id) == list(range(5000))
    pairs = [line.split() for line in seen.read_text().splitlines()]
    assert sorted(int(p) for p, _ in pairs) == list(range(5000))
    assert all(p == item for p, item in pairs)


def test_appenders_at_once_each_get_their_items_in_once(redis_url: str, run_id: str) -> None:
    env = env_of(redis_url, run_id)
    assert wq("seed", "--open", "--shards", "3", env=env).returncode == 0
    sources = [[f"{name}-{n}" for n in range(40_000)] for name in ("a", "b")]

    def add(items: list[str]) -> subprocess.CompletedProcess[str]:
        stdin = "".join(f"{item}\n" for item in items)
        return wq("seed", "--append", "--items-from", "-", env=env, stdin=stdin, timeout=120)

    with ThreadPoolExecutor(len(sources)) as pool:
        for added in pool.map(add, sources):
            assert added.returncode == 0, added.stderr
    assert wq("seal", env=env).returncode == 0
    got = report_items(redis_url, run_id)
    assert sorted(map(str, got)) == sorted(sources[0] + sources[1]), "each item once"
    for items in sources:  # each appender's chunks whole and in its order
        assert [item for item in got if str(item)[0] == items[0][0]] == items


def put_first_piece_of_next_chunk(redis_url: str, run_id: str, items: list[Any]) -> int:
    """What a seeder that died half-way through a chunk leaves: the chunk's first piece in its
    shard, the run's total not raised. Returns that piece's size."""
    queue = make_queue(redis_url, run_id)
    try:
        total = queue.reading.total()
        runs = queue.shard_runs()
        [piece, *_] = shard_layout.stripes_from(total, len(items), len(runs))
        encoded = [json.dumps(item) for item in items[: piece.size]]
        _append_piece(queue.shard(runs[piece.shard]), piece, encoded)
        assert queue.reading.total() == total, "the directory does not know of it"
        return piece.size
    finally:
        queue.close()


def test_the_next_appender_adopts_a_chunk_left_half_in(redis_url: str, run_id: str) -> None:
    env = env_of(redis_url, run_id)
    assert wq("seed", "--open", "--shards", "3", env=env).returncode == 0
    assert wq("seed", "--append", "a", "b", env=env).returncode == 0
    dead = [f"dead-{n}" for n in range(3000)]
    piece = put_first_piece_of_next_chunk(redis_url, run_id, dead)
    assert piece == shard_layout.STRIPE - 2  # the rest of stripe 0
    added = wq("seed", "--append", "c", env=env)
    assert added.returncode == 0, added.stderr
    assert f"total={2 + piece + 1}" in added.stderr
    assert wq("seal", env=env).returncode == 0
    assert report_items(redis_url, run_id) == ["a", "b", *dead[:piece], "c"]
    assert wq("work", "--demo-sleep", "0", env=env).returncode == 0
    checked = wq("status", "--check", env=env)
    assert f"every position accounted for once: {2 + piece + 1} done + 0 dead" in checked.stdout


@pytest.mark.parametrize("flag", ["--progressive", "--append"])
def test_a_sharded_run_takes_the_flags_of_open_runs(redis_url: str, run_id: str, flag: str) -> None:
    env = env_of(redis_url, run_id)
    lines = "".join(f"{n}\n" for n in range(3000))
    seeded = wq(
        "seed",
        flag,
        "--items-from",
        "-",
        "--format",
        "jsonl",
        "--shards",
        "3",
        env=env,
        stdin=lines,
    )
    assert seeded.returncode == 0, seeded.stderr
    status = status_of(redis_url, run_id)
    assert (status["shards"], status["total"]) == (3, 3000)
    assert status["open"] is (flag == "--append")
    assert report_items(redis_url, run_id) == list(range(3000))


def test_the_append_lock_waits_then_says_who_holds_it_and_never_outlives_an_error(
    redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    key = RunKeys(run_id).append_lock
    queue, other = make_queue(redis_url, run_id), make_queue(redis_url, run_id)
    try:
        busy = pytest.raises(AppendLockBusy, match="another appender has held run")
        with queue.appends.locked(1), busy, other.appends.locked(0.2):
            pass
        assert client.exists(key) == 0, "released"
        with pytest.raises(ZeroDivisionError), queue.appends.locked(1):
            _ = 1 / 0
        assert client.exists(key) == 0, "released by a chunk that failed"
        lost = pytest.raises(AppendLockLost, match="check the run with `wq status --check`")
        with lost, queue.appends.locked(1):
            client.delete(key)  # as its expiry would, past LOCK_S
    finally:
        queue.close()
        other.close()
