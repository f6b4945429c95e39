"""Open runs: appends while workers run, each chunk seen whole; workers exit 0 only once the
run is sealed and drained; the seal records the digest of every item."""

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.conftest import drain, make_queue
from tests.unit.servers import HTTPServer, drop_after
from wq.base.errors import ConfigError
from wq.base.item import encode
from wq.seed import open_runs
from wq.seed.seeder import seed_items
from wq.store.queue import RunQueue


def env_of(redis_url: str, run_id: str) -> dict[str, str]:
    return {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}


def status_of(redis_url: str, run_id: str) -> dict[str, Any]:
    out = wq("status", "--json", env=env_of(redis_url, run_id))
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def batches(values: list[Any], size: int) -> list[list[str]]:
    encoded = [encode(v) for v in values]
    return [encoded[i : i + size] for i in range(0, len(encoded), size)]


@pytest.mark.parametrize(
    ("first", "sizes", "chunk"),
    [(0, [1, 31, 1, 64, 5], 32), (33, [40, 1000, 7], 32), (5000, [1, 300, 7], 127)],
)
def test_appends_across_field_boundaries_keep_every_item_in_order(
    queue: RunQueue, first: int, sizes: list[int], chunk: int
) -> None:
    """Appends fill the last field and add more, in the run's own items per field: the
    default for a run opened with few items, layout.choose_chunk's for one seeded with many."""
    values: list[Any] = [f"s{n}" for n in range(first)]
    seed_items(queue, [encode(v) for v in values], open_run=True)
    assert queue.appends.open_state().chunk == chunk
    for k, size in enumerate(sizes):
        more = [{"chunk": k, "n": n} for n in range(size)]
        result = open_runs.append(queue, iter(batches(more, 3)))
        values += more
        assert (result.appended, result.total) == (size, len(values))
    assert drain(queue) == values
    assert queue.reading.status().drained is False  # open: more may come
    sealed = open_runs.seal(queue)
    assert sealed.digest == open_runs.items_digest(queue, len(values), chunk)
    assert queue.reading.status().drained is True


def test_each_chunk_is_seen_whole_even_with_appenders_racing(
    queue: RunQueue, redis_url: str
) -> None:
    """Two appenders at once: every chunk lands in consecutive positions, none interleaved,
    none lost, none twice; a lease taken meanwhile never sees part of a chunk."""
    seed_items(queue, [], open_run=True)
    size, rounds = 50, 40
    errors: list[BaseException] = []

    def appender(name: str) -> None:
        own = make_queue(redis_url, queue.run)
        try:
            for r in range(rounds):
                chunk = [encode({"by": name, "round": r, "n": n}) for n in range(size)]
                state = own.appends.open_state()
                open_runs._append_chunk(own, chunk, state.total, state.chunk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=appender, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    seen_totals = []
    while any(t.is_alive() for t in threads):
        seen_totals.append(queue.reading.status().total)
    for t in threads:
        t.join()
    assert errors == []
    assert all(t % size == 0 for t in seen_totals)  # never part of a chunk
    items = drain(queue)
    assert len(items) == 2 * rounds * size
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        assert {(i["by"], i["round"]) for i in chunk} == {(chunk[0]["by"], chunk[0]["round"])}
        assert [i["n"] for i in chunk] == list(range(size))


def test_a_worker_never_exits_0_on_an_open_run(redis_url: str, run_id: str, tmp_path: Path) -> None:
    env = env_of(redis_url, run_id)
    assert wq("seed", "--open", "a", "b", "c", env=env).returncode == 0
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            wq_argv("work", "--handler", "demo", "--demo-sleep", "0", "--poll", "0.05"),
            env=wq_env(env),
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        # Drained, open: it says it waits for items, and it keeps waiting.
        wait_until("the worker to wait on the open run", lambda: "run.open" in log.read_text(), 30)
        assert status_of(redis_url, run_id)["done"] == 3
        assert status_of(redis_url, run_id)["state"] == "open, waiting for items or the seal"
        assert worker.poll() is None
        # Appended items are processed by the same worker, which is still waiting after them.
        assert wq("seed", "--append", "d", "e", env=env).returncode == 0
        wait_until("the appended items", lambda: status_of(redis_url, run_id)["done"] == 5, 30)
        wait_until(
            "a second wait on the open run",
            lambda: log.read_text().count("run.open") >= 2,
            30,
        )
        assert worker.poll() is None
        check = wq("status", "--check", env=env)
        assert check.returncode == 1
        assert "NOT accounted for: the run is open" in check.stdout
        # Sealed and drained: exit 0.
        sealed = wq("seal", env=env)
        assert sealed.returncode == 0, sealed.stderr
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    status = status_of(redis_url, run_id)
    assert (status["state"], status["open"], status["total"]) == ("drained", False, 5)
    assert status["digest"] == wq("digest", "a", "b", "c", "d", "e").stdout.strip()
    assert wq("status", "--check", env=env).returncode == 0


def test_open_seal_and_append_from_the_command_line(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    env = env_of(redis_url, run_id)
    # --append to a run not seeded yet opens it.
    first = wq("seed", "--append", "x", "y", env=env)
    assert first.returncode == 0, first.stderr
    assert "appended=2 total=2" in first.stderr
    items = tmp_path / "more.jsonl"
    items.write_text('{"a": 1}\n[2]\n', encoding="utf-8")
    more = wq("seed", "--append", "--items-url", items.as_uri(), env=env)
    assert more.returncode == 0, more.stderr
    # Each append logs the digest of its own items, as `wq digest` gives it.
    assert f"digest={wq('digest', '--items-file', str(items)).stdout.strip()}" in more.stderr
    text = wq("status", env=env).stdout
    assert "open (wq seed --append adds, wq seal closes)" in text
    assert "digest     - (computed at the seal)" in text

    sealed = wq("seal", env=env)
    assert sealed.returncode == 0, sealed.stderr
    assert "sealed: 4 item(s)" in sealed.stdout
    again = wq("seal", env=env)
    assert "was sealed already: 4 item(s)" in again.stdout
    assert sealed.stdout.split("digest ")[1] == again.stdout.split("digest ")[1]
    assert "sealed" in wq("status", env=env).stdout

    late = wq("seed", "--append", "z", env=env)
    assert late.returncode == 2
    assert "is sealed: it takes no more items" in late.stderr
    assert status_of(redis_url, run_id)["total"] == 4


def test_an_append_failing_half_way_keeps_whole_chunks_and_says_how_many(
    redis_url: str, run_id: str, http_server: HTTPServer, queue: RunQueue
) -> None:
    env = env_of(redis_url, run_id)
    body = "".join(f"item-{n}\n" for n in range(200_000)).encode()
    # The hang-up comes once a chunk is in, however slowly the client reads.
    http_server.routes["/more.txt"] = drop_after(
        body, 150_000, until=lambda: queue.reading.status().total > 0
    )
    failed = wq("seed", "--append", "--items-url", f"{http_server.url}/more.txt", env=env)
    assert failed.returncode == 1, failed.stderr
    total = status_of(redis_url, run_id)["total"]
    assert total > 0
    assert total % open_runs.APPEND_ITEMS == 0  # whole chunks only
    assert f"{total} item(s) of this source were appended before" in failed.stderr
    assert failed.stderr.count("\n") == 1, failed.stderr


def test_seeding_open_is_idempotent_and_refuses_other_items(redis_url: str, run_id: str) -> None:
    env = env_of(redis_url, run_id)
    assert "outcome=seeded" in wq("seed", "--open", "a", env=env).stderr
    assert wq("seed", "--append", "b", env=env).returncode == 0
    retry = wq("seed", "--open", "a", env=env)
    assert retry.returncode == 0
    assert "outcome=already_seeded" in retry.stderr
    other = wq("seed", "--open", "q", env=env)
    assert other.returncode == 2
    assert "already seeded with different items" in other.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["seal"], "is not seeded: there is nothing to seal"),
        (["seed", "--open", "--range", "0:5"], "--open cannot go with --range"),
        (["seed", "--append", "--range", "0:5"], "--append takes listed items"),
        (["seed", "--append"], "exactly one way"),
    ],
)
def test_open_run_mistakes_are_one_line_exit_2(
    redis_url: str, run_id: str, args: list[str], message: str
) -> None:
    result = wq(*args, env=env_of(redis_url, run_id))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_a_sealed_run_is_refused_appends_in_process(queue: RunQueue) -> None:
    seed_items(queue, [encode("a")])  # seeded sealed, as every run before open runs
    with pytest.raises(ConfigError, match="is sealed"):
        open_runs.append(queue, iter([[encode("b")]]))
    assert open_runs.seal(queue).sealed_now is False


def test_chunks_are_bounded_by_items_and_bytes() -> None:
    items = [encode("x" * 10)] * 100  # 12 bytes each
    assert [len(c) for c in open_runs.chunks([items[:30], items[30:]], 40, 10_000)] == [40] * 2 + [
        20
    ]
    assert [len(c) for c in open_runs.chunks([items], 1000, 120)] == [10] * 10
