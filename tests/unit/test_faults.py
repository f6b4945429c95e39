"""Fault injection with real processes: workers killed or stopped mid-item, Redis restarted.

Every item must end done exactly once in the done record, the run drained, and every worker
that was not killed must exit 0."""

import random
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.conftest import make_queue
from tests.unit.sample_handlers import executions
from wq.read.ledger import DEAD, DONE, account, iter_records
from wq.store import layout
from wq.store.keys import RunKeys
from wq.store.local_redis import RedisServer

pytestmark = pytest.mark.slow


class Fleet:
    """Worker processes running the sample `record` handler on one run."""

    def __init__(self, url: str, run: str, log_dir: Path, **env: str) -> None:
        self.env = wq_env(
            {
                "WQ_REDIS_URL": url,
                "WQ_RUN": run,
                "WQ_HANDLER": "python",
                "WQ_PYTHON": "tests.unit.sample_handlers:record",
                "WQ_TEST_LOG_DIR": str(log_dir),
                "WQ_LOG_LEVEL": "warning",
                "WQ_POLL": "0.1",
                **env,
            }
        )
        self.live: list[subprocess.Popen[str]] = []
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.workers_key = RunKeys(run).workers
        self.ended: list[tuple[subprocess.Popen[str], str]] = []  # (process, how it ended)

    def start(self, n: int) -> None:
        for _ in range(n):
            proc = subprocess.Popen(
                wq_argv("work"),
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            self.live.append(proc)

    def signal_one(self, sig: signal.Signals, rng: random.Random) -> None:
        """Signal a random worker that is working: one that has recorded an item (a process
        still importing Python modules would just die of the signal, holding nothing)."""

        def working() -> list[subprocess.Popen[str]] | None:
            recorded = set(self.client.hkeys(self.workers_key))  # those that recorded items
            running = [
                p
                for p in self.live
                if p.poll() is None and f"{socket.gethostname()}-{p.pid}" in recorded
            ]
            return running or None

        victim = rng.choice(wait_until("a worker that has recorded an item", working, 60))
        victim.send_signal(sig)
        victim.wait(30)
        self.live.remove(victim)
        self.ended.append((victim, sig.name))

    def wait(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        codes = []
        for p in self.live:
            codes.append(p.wait(max(0.1, deadline - time.monotonic())))
            self.ended.append((p, "exit"))
        self.live = []
        return codes

    def stderr_of_exited(self) -> str:
        """What the workers that exited by themselves logged (read once)."""
        return "\n".join(p.stderr.read() for p, how in self.ended if how == "exit" and p.stderr)

    def stderr_of_failures(self) -> str:
        return "\n".join(
            p.stderr.read() for p, how in self.ended if how == "exit" and p.returncode and p.stderr
        )

    def close(self) -> None:
        self.client.close()
        for p in self.live:
            p.kill()
            p.wait()
        for p, _ in self.ended:
            if p.stderr:
                p.stderr.close()


def wait_for_done(url: str, run: str, n: int) -> int:
    """Waits until at least `n` items are done; returns how many are (a fresh connection per
    look, so it works across a Redis restart)."""

    def done() -> int | None:
        client = redis.Redis.from_url(url)
        try:
            count = _done_count(client, run)
        finally:
            client.close()
        return count if count >= n else None

    return wait_until(f"{n} items done", done, timeout=120)


def seed_range(url: str, run: str, total: int) -> None:
    result = wq("seed", "--range", f"0:{total}", env={"WQ_REDIS_URL": url, "WQ_RUN": run})
    assert result.returncode == 0, result.stderr


def assert_every_item_done_once(url: str, run: str, total: int) -> None:
    queue = make_queue(url, run)
    status = queue.reading.status()
    done = [r.position for r in iter_records(queue) if r.state == DONE]
    accounting = account(queue)
    queue.close()
    assert accounting.exact, accounting.summary()
    assert (status.pending, status.in_flight, status.dead) == (0, 0, 0)
    assert status.done == total
    assert done == list(range(total))


@pytest.mark.timeout(240)
def test_sigkill_random_workers_mid_item(redis_url: str, run_id: str, tmp_path: Path) -> None:
    total, kills = 6000, 8
    rng = random.Random(7)
    seed_range(redis_url, run_id, total)
    fleet = Fleet(
        redis_url, run_id, tmp_path, WQ_TEST_SLEEP="0.004", WQ_LEASE="1", WQ_MAX_ATTEMPTS="20"
    )
    try:
        fleet.start(5)
        queue = make_queue(redis_url, run_id)
        for k in range(1, kills + 1):
            wait_for_done(redis_url, run_id, k * total // (kills + 2))
            fleet.signal_one(signal.SIGKILL, rng)
            fleet.start(1)  # the Job controller would replace the pod
        assert not queue.reading.status().drained  # every kill landed while work remained
        queue.close()
        codes = fleet.wait(180)
        assert codes == [0] * len(codes), fleet.stderr_of_failures()
    finally:
        fleet.close()
    assert_every_item_done_once(redis_url, run_id, total)
    ran = Counter(executions(tmp_path))
    assert set(ran) == {str(i) for i in range(total)}
    duplicates = sum(n - 1 for n in ran.values())
    # A killed worker can only have lost the results it had not yet recorded: at most one
    # batch (500) each.
    assert duplicates <= kills * 500


@pytest.mark.timeout(240)
def test_sigterm_releases_leases_at_once_without_using_attempts(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    total, stops = 800, 4
    rng = random.Random(11)
    seed_range(redis_url, run_id, total)
    # A long lease: if SIGTERM did not release, the run would stall for 5 minutes.
    fleet = Fleet(
        redis_url, run_id, tmp_path, WQ_TEST_SLEEP="0.03", WQ_LEASE="300", WQ_MAX_ATTEMPTS="1"
    )
    queue = make_queue(redis_url, run_id)
    try:
        fleet.start(4)
        for k in range(1, stops + 1):
            wait_for_done(redis_url, run_id, k * total // (stops + 2))
            fleet.signal_one(signal.SIGTERM, rng)
            fleet.start(1)
        assert not queue.reading.status().drained  # every stop landed while work remained
        codes = fleet.wait(120)
        assert codes == [0] * len(codes), fleet.stderr_of_failures()
        stopped = [p for p, how in fleet.ended if how == "SIGTERM"]
        assert [p.returncode for p in stopped] == [143] * stops
        status = queue.reading.status()
        assert status.released > 0
        assert status.retried == 0  # nothing had to wait for a lease to expire
        assert queue.client.hlen(queue.keys.attempts) == 0  # a graceful stop charges none
        assert "lease.lost" not in fleet.stderr_of_exited()  # no false alarms
    finally:
        fleet.close()
        queue.close()
    assert_every_item_done_once(redis_url, run_id, total)
    ran = Counter(executions(tmp_path))
    assert sum(n - 1 for n in ran.values()) <= stops  # only an interrupted item runs again


def outage_fleet(server: RedisServer, run: str, tmp_path: Path) -> Fleet:
    """Workers that ride out a Redis outage of up to a minute: short items and leases, so
    that leases expire across the outage, and attempts enough that no item is dead for it."""
    return Fleet(
        server.url,
        run,
        tmp_path,
        WQ_TEST_SLEEP="0.003",
        WQ_LEASE="2",
        WQ_REDIS_WAIT="60",
        WQ_MAX_ATTEMPTS="20",
    )


@pytest.mark.timeout(240)
def test_redis_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", aof=True)
    server.start()
    run, total = "restart", 2000
    try:
        seed_range(server.url, run, total)
        fleet = outage_fleet(server, run, tmp_path)
        try:
            fleet.start(4)
            for outage in (1, 2):
                # Each outage hits the run in progress: a third, then two thirds done.
                done_before = wait_for_done(server.url, run, outage * total // 3)
                server.stop(kill=True)
                time.sleep(1.5)  # the outage itself: workers keep retrying through it
                server.start()
                # Nothing acknowledged before the kill is lost.
                assert wait_for_done(server.url, run, 0) >= done_before
            codes = fleet.wait(180)
            assert codes == [0] * len(codes), fleet.stderr_of_failures()
        finally:
            fleet.close()
        assert_every_item_done_once(server.url, run, total)
        assert set(executions(tmp_path)) == {str(i) for i in range(total)}
    finally:
        server.stop()


@pytest.mark.timeout(240)
def test_redis_down_longer_than_a_lease_charges_no_running_item(tmp_path: Path) -> None:
    """Redis down for longer than the lease while items run (a restart in kubelet's back-off):
    their leases expire meanwhile, and when Redis is back an idle worker would reclaim them at
    once, charging items that are still running. But a restart counts as a renewal of every
    lease: for a lease length nothing is reclaimed, and the workers, alive, renew theirs. No
    item is charged or run again."""
    server = RedisServer(tmp_path / "redis", aof=True)
    server.start()
    run, busy, lease_s = "outage", 3, 4.0
    try:
        seed_range(server.url, run, busy)
        fleet = Fleet(
            server.url,
            run,
            tmp_path,
            WQ_TEST_SLEEP="10",
            WQ_TEST_LOG_STARTS="1",
            WQ_LEASE=str(lease_s),
            WQ_REDIS_WAIT="60",
        )
        try:
            fleet.start(busy + 1)  # one more: idle, it polls and reclaims what expires
            wait_until(
                "every item running", lambda: len(executions(tmp_path, starts=True)) >= busy, 60
            )
            server.stop(kill=True)
            down = time.monotonic()
            # Down longer than a lease (Redis' clock runs on meanwhile): every lease expires.
            wait_until("a lease and a half", lambda: time.monotonic() > down + 1.5 * lease_s, 20)
            server.start()
            codes = fleet.wait(180)
            assert codes == [0] * len(codes), fleet.stderr_of_failures()
        finally:
            fleet.close()
        assert_every_item_done_once(server.url, run, busy)
        queue = make_queue(server.url, run)
        attempts = {r.position: r.attempts for r in iter_records(queue)}
        retried = queue.reading.status().retried
        queue.close()
        assert attempts == dict.fromkeys(range(busy), 1), "no item was charged for the outage"
        assert retried == 0
        assert Counter(executions(tmp_path)) == Counter(str(i) for i in range(busy))
    finally:
        server.stop()


def append_only_tail(workdir: Path) -> Path:
    """The file Redis appends its writes to: the incremental file of Redis 7's multi-part
    append-only file (appendonlydir/), or the one file of older versions."""
    incr = sorted((workdir / "appendonlydir").glob("*.incr.aof"))
    return incr[-1] if incr else workdir / "appendonly.aof"


@pytest.mark.timeout(240)
def test_redis_rolled_back_to_an_earlier_state_loses_nothing(tmp_path: Path) -> None:
    """What a Redis that lost its last second of writes does to a run (a node crash under
    appendfsync everysec): Redis comes back from its append-only file cut short, an earlier
    state of the run, while the workers remember more. Items they finished after that state are
    in flight again (under leases their workers no longer renew) and run again once those
    expire; items leased after it are pending again; results under a rolled-back lease are
    refused. So every item is still done exactly once, the workers exit 0 and `wq status
    --check` passes; only finished items run again."""
    server = RedisServer(tmp_path / "redis", aof=True)
    server.start()
    run, total, workers = "rollback", 3000, 4
    try:
        seed_range(server.url, run, total)
        fleet = outage_fleet(server, run, tmp_path)
        try:
            fleet.start(workers)
            wait_for_done(server.url, run, total // 4)
            tail = append_only_tail(server.workdir)
            cut = tail.stat().st_size  # the state the run will be rolled back to
            at_kill = wait_for_done(server.url, run, total // 2)
            server.stop(kill=True)
            with tail.open("r+b") as aof:
                aof.truncate(cut)  # the writes after the cut never reached the disk
            server.start()
            restored = _done(server.url, run)
            assert restored < at_kill, "the run was rolled back"
            codes = fleet.wait(180)
            assert codes == [0] * len(codes), fleet.stderr_of_failures()
        finally:
            fleet.close()
        assert_every_item_done_once(server.url, run, total)
        check = wq("status", "--check", env={"WQ_REDIS_URL": server.url, "WQ_RUN": run})
        assert check.returncode == 0, check.stderr
        ran = Counter(executions(tmp_path))
        assert set(ran) == {str(i) for i in range(total)}
        duplicates = sum(n - 1 for n in ran.values())
        # The completions rolled back, and what the workers held then: at most a batch each.
        assert duplicates <= (at_kill - restored) + workers * 500, (duplicates, at_kill, restored)
    finally:
        server.stop()


def replace_the_dead(fleet: Fleet, url: str, run: str, timeout: float) -> int:
    """Starts a worker for each one that was killed, as the Job controller would, until the
    run is drained; returns how many were killed."""
    queue = make_queue(url, run)
    killed = 0
    deadline = time.monotonic() + timeout
    try:
        while not queue.reading.status().drained:
            for p in [p for p in fleet.live if p.poll() is not None and p.returncode < 0]:
                fleet.live.remove(p)
                fleet.ended.append((p, "killed"))
                killed += 1
                fleet.start(1)
            if time.monotonic() > deadline:
                pytest.fail(f"run not drained after {timeout:g}s: {queue.reading.status()}")
            time.sleep(0.05)  # the polling interval
    finally:
        queue.close()
    return killed


@pytest.mark.timeout(240)
def test_a_pod_killing_item_is_isolated_and_its_batch_mates_are_not_charged(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    total, poison = 300, 150
    seed_range(redis_url, run_id, total)
    fleet = Fleet(
        redis_url,
        run_id,
        tmp_path,
        WQ_PYTHON="tests.unit.sample_handlers:killer",
        WQ_PYTHON_ISOLATION="none",  # the item kills its worker (tests/unit/test_isolation.py: not)
        WQ_TEST_KILLER=str(poison),
        WQ_LEASE="1",
        WQ_MAX_ATTEMPTS="2",
    )
    try:
        fleet.start(2)
        # One death in a batch (charges nobody), then two alone (charge the poison twice).
        assert replace_the_dead(fleet, redis_url, run_id, 180) == 3
        codes = fleet.wait(60)
        assert codes == [0] * len(codes), fleet.stderr_of_failures()
    finally:
        fleet.close()
    queue = make_queue(redis_url, run_id)
    status = queue.reading.status()
    [dead] = list(iter_records(queue, states=(DEAD,)))
    attempts = queue.client.hgetall(queue.keys.attempts)
    queue.close()
    assert (dead.position, dead.error) == (
        poison,
        "its worker died 2 times while processing it (its lease expired)",
    )
    assert (status.done, status.dead) == (total - 1, 1)
    assert attempts == {str(poison): "1"}  # nobody else was charged an attempt


@pytest.mark.timeout(240)
def test_a_killed_workers_item_runs_again_while_fresh_items_remain(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    """Expired leases are reclaimed as soon as they expire, not when the fresh items run out."""
    total, victim_item = 3000, 40
    seed_range(redis_url, run_id, total)
    once = tmp_path / "killed-once"
    fleet = Fleet(
        redis_url,
        run_id,
        tmp_path,
        WQ_PYTHON="tests.unit.sample_handlers:killer",
        WQ_PYTHON_ISOLATION="none",  # the item kills its worker (tests/unit/test_isolation.py: not)
        WQ_TEST_KILLER=str(victim_item),
        WQ_TEST_KILL_ONCE=str(once),
        WQ_TEST_SLEEP="0.005",
        WQ_LEASE="1",
    )
    queue = make_queue(redis_url, run_id)
    try:
        fleet.start(2)
        wait_until("the victim item to kill its worker", once.exists, 60)
        fleet.start(1)
        wait_until(
            "the victim item to run again",
            lambda: str(victim_item) in executions(tmp_path),
            120,
        )
        assert queue.reading.status().pending > 0  # long before the fresh items ran out
        replace_the_dead(fleet, redis_url, run_id, 180)
        codes = fleet.wait(60)
        assert codes == [0] * len(codes), fleet.stderr_of_failures()
    finally:
        fleet.close()
        queue.close()
    assert_every_item_done_once(redis_url, run_id, total)


@pytest.mark.timeout(240)
def test_a_paused_worker_does_not_run_the_rest_of_its_lost_batch(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    total = 400
    seed_range(redis_url, run_id, total)
    fleet = Fleet(
        redis_url, run_id, tmp_path, WQ_TEST_SLEEP="0.02", WQ_LEASE="1", WQ_TEST_LOG_STARTS="1"
    )
    try:
        fleet.start(1)
        [paused] = fleet.live
        log = tmp_path / f"{paused.pid}.log"
        wait_until("the first worker to finish 5 items", lambda: _finished(log) >= 5, 60)
        paused.send_signal(signal.SIGSTOP)
        starts_before = _started(log)
        fleet.start(1)  # takes over the paused worker's leases once they expire
        wait_until("the run to drain", lambda: _done(redis_url, run_id) == total, 120)
        paused.send_signal(signal.SIGCONT)
        codes = fleet.wait(60)
        assert codes == [0, 0], fleet.stderr_of_failures()
        # At most the item it was in the middle of; none of the rest of its batch.
        assert _started(log) == starts_before
    finally:
        fleet.close()
    assert_every_item_done_once(redis_url, run_id, total)


def _started(log: Path) -> int:
    return sum(line.startswith("start:") for line in log.read_text().splitlines())


def _finished(log: Path) -> int:
    if not log.exists():
        return 0
    return sum(not line.startswith("start:") for line in log.read_text().splitlines())


def _done(url: str, run: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return _done_count(client, run)
    finally:
        client.close()


def _done_count(client: "redis.Redis", run: str) -> int:
    return int(client.hget(RunKeys(run).meta, layout.DONE_COUNT) or 0)


@pytest.mark.timeout(240)
def test_redis_restarted_without_persistence_ends_the_run_as_lost(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    run, total = "forgotten", 2000
    try:
        seed_range(server.url, run, total)
        fleet = Fleet(server.url, run, tmp_path, WQ_TEST_SLEEP="0.01", WQ_REDIS_WAIT="60")
        try:
            fleet.start(2)
            wait_for_done(server.url, run, 100)
            server.stop(kill=True)
            server.start()  # empty: no AOF, no snapshot
            codes = fleet.wait(120)
            errors = fleet.stderr_of_failures()
            assert codes == [4, 4], errors
            assert "was seeded but its keys are gone" in errors
        finally:
            fleet.close()
        check = wq(
            "status", "--check", "--expect-seeded", env={"WQ_REDIS_URL": server.url, "WQ_RUN": run}
        )
        assert check.returncode == 4
        assert "was seeded but its keys are gone" in check.stderr
    finally:
        server.stop()
