"""`wq seed --progressive`, through the real entry point: workers get the first items while
the source is still being read, the run is sealed when the source ends, a retry after a
failure adds the rest exactly once, and workers fail (not wait for ever) when the seeder
stops without sealing."""

import json
import subprocess

import pytest
import redis

from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.conftest import make_queue
from tests.unit.servers import HTTPServer, drop_after
from tests.unit.test_open_shards import put_first_piece_of_next_chunk
from wq.store.queue import RunQueue


def env_of(redis_url: str, run_id: str) -> dict[str, str]:
    return {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}


def status_of(redis_url: str, run_id: str) -> dict[str, object]:
    out = wq("status", "--json", env=env_of(redis_url, run_id))
    result: dict[str, object] = json.loads(out.stdout)
    return result


def lines(prefix: str, count: int) -> list[str]:
    """`count` items of 40 bytes: 60,000 of them are more than one append chunk (1 MB)."""
    return [f"{prefix}-{n:0{39 - len(prefix)}d}" for n in range(count)]


def serve(
    http_server: HTTPServer,
    items: list[str],
    hang_up_after: int | None = None,
    queue: RunQueue | None = None,
) -> str:
    """Serve `items` as lines at /items.txt (hanging up after that many lines, if given, once
    the run of `queue` has items: however slowly the seeder reads, some are in); its URL."""
    body = "".join(f"{line}\n" for line in items).encode()
    http_server.routes.pop("/items.txt", None)
    if hang_up_after is None:
        http_server.files["/items.txt"] = body
    else:
        until = None if queue is None else lambda: queue.reading.status().total > 0
        http_server.routes["/items.txt"] = drop_after(body, hang_up_after, until)
    return f"{http_server.url}/items.txt"


def start_seeder(redis_url: str, run_id: str) -> "subprocess.Popen[str]":
    """`wq seed --progressive --items-from -`, its standard input left open."""
    return subprocess.Popen(
        wq_argv("seed", "--progressive", "--items-from", "-"),
        env=wq_env(env_of(redis_url, run_id)),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_workers_start_while_the_source_is_read_and_the_end_seals_the_run(
    redis_url: str, run_id: str
) -> None:
    first, rest = lines("first", 60_000), lines("rest", 5_000)
    with start_seeder(redis_url, run_id) as seeder:
        check_progressive_run(redis_url, run_id, seeder, first, rest)


def check_progressive_run(
    redis_url: str, run_id: str, seeder: "subprocess.Popen[str]", first: list[str], rest: list[str]
) -> None:
    assert seeder.stdin is not None
    seeder.stdin.write("".join(f"{line}\n" for line in first))
    seeder.stdin.flush()
    queue = make_queue(redis_url, run_id)
    batch = wait_until(
        "the first items to be leasable", lambda: queue.leases.lease(10, 60, "t").items or None, 60
    )
    assert seeder.poll() is None, "the source is still open: the seeder is reading"
    assert [item.value for item in batch] == first[:10]
    assert status_of(redis_url, run_id)["open"] is True
    queue.leases.complete("t", "w", [item.position for item in batch])

    seeder.stdin.write("".join(f"{line}\n" for line in rest))
    seeder.stdin.close()
    assert seeder.wait(timeout=60) == 0, seeder.stderr.read() if seeder.stderr else ""
    status = status_of(redis_url, run_id)
    assert (status["open"], status["total"]) == (False, 65_000)
    stdin = "".join(f"{line}\n" for line in first + rest)
    assert status["digest"] == wq("digest", "--items-from", "-", stdin=stdin).stdout.strip()
    values = [item.value for item in batch]
    while more := queue.leases.lease(1000, 60, "t").items:
        values.extend(item.value for item in more)
        queue.leases.complete("t", "w", [item.position for item in more])
    assert values == first + rest
    assert queue.reading.status().drained is True
    queue.close()


@pytest.mark.parametrize("shards", ["1", "3"])
def test_a_retry_after_a_failure_adds_the_rest_once(
    redis_url: str,
    run_id: str,
    http_server: HTTPServer,
    client: "redis.Redis",
    queue: RunQueue,
    shards: str,
) -> None:
    items = lines("item", 200_000)
    url = serve(http_server, items, hang_up_after=150_000, queue=queue)
    env = env_of(redis_url, run_id)
    failed = wq("seed", "--progressive", "--items-url", url, "--shards", shards, env=env)
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.count("\n") == 1, failed.stderr
    assert "are in the run: a retry adds the rest, once" in failed.stderr
    status = status_of(redis_url, run_id)
    assert status["open"] is True
    partial = status["total"]
    assert isinstance(partial, int)
    assert 0 < partial <= 150_000
    if shards != "1":  # as if it had died half-way through its next chunk: a piece is in
        assert put_first_piece_of_next_chunk(redis_url, run_id, items[partial:]) > 0

    serve(http_server, items)
    again = wq("seed", "--progressive", "--items-url", url, env=env)
    assert again.returncode == 0, again.stderr
    assert f"resumed_after={partial}" in again.stderr
    status = status_of(redis_url, run_id)
    assert (status["open"], status["total"]) == (False, 200_000)
    assert status["digest"] == wq("digest", "--items-url", url).stdout.strip()
    report = wq("report", env=env).stdout.splitlines()
    assert [json.loads(line)["item"] for line in report] == items

    # Once more on the sealed run: the source is all in, nothing changes.
    done = wq("seed", "--progressive", "--items-url", url, env=env)
    assert done.returncode == 0, done.stderr
    assert "appended=0" in done.stderr
    assert status_of(redis_url, run_id)["total"] == 200_000


def test_a_retry_with_other_items_is_refused(
    redis_url: str, run_id: str, http_server: HTTPServer, queue: RunQueue
) -> None:
    items = lines("item", 100_000)
    url = serve(http_server, items, hang_up_after=80_000, queue=queue)
    env = env_of(redis_url, run_id)
    assert wq("seed", "--progressive", "--items-url", url, env=env).returncode == 1
    serve(http_server, items[::-1])
    refused = wq("seed", "--progressive", "--items-url", url, env=env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "differ from this one's" in refused.stderr


def test_workers_fail_when_the_seeder_stops_without_sealing(redis_url: str, run_id: str) -> None:
    """The seeder hangs on its source (its standard input stays open, silent): once the
    workers have drained what it added, they fail after --seed-wait instead of waiting for
    ever, and say what to do."""
    with start_seeder(redis_url, run_id) as seeder:
        check_worker_fails(redis_url, run_id, seeder)


def check_worker_fails(redis_url: str, run_id: str, seeder: "subprocess.Popen[str]") -> None:
    assert seeder.stdin is not None
    seeder.stdin.write("".join(f"{line}\n" for line in lines("first", 60_000)))
    seeder.stdin.flush()
    try:
        worker = wq(
            "work", "--handler", "demo", "--demo-sleep", "0", "--seed-wait", "3",
            env=env_of(redis_url, run_id), timeout=120,
        )  # fmt: skip
        assert worker.returncode not in (0, None), worker.stderr
        assert "its seeder last added items" in worker.stderr
        assert "stopped without sealing the run" in worker.stderr
        assert seeder.poll() is None
    finally:
        seeder.stdin.close()
        seeder.wait(timeout=60)
