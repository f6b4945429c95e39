"""The worker loop, in process: draining, waiting, reclaiming, failing, batching."""

import contextlib
import io
import shlex
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.polling import wait_until
from tests.unit.conftest import make_queue
from wq.base.errors import RunLost, SeedTimeout
from wq.base.item import Item, encode
from wq.base.logs import EventLog
from wq.base.options import WorkerConfig
from wq.read.ledger import DEAD, iter_records
from wq.seed.seeder import seed_items
from wq.store.completions import Completions, Results
from wq.store.connection import RedisSettings, Retrying
from wq.store.leases import LeaseReply
from wq.store.local_redis import RedisServer
from wq.store.queue import RunQueue
from wq.work.command_handler import CommandHandler
from wq.work.handlers import DemoHandler, HandlerFailed, PythonHandler
from wq.work.outcome import moving_average
from wq.work.worker import EXIT_DEAD_ITEMS, EXIT_DRAINED, Heartbeat, Held, Worker


class Recorder:
    """A python handler that records what it saw (thread-safe)."""

    enforces_own_timeout = False

    def __init__(self, sleep_s: float = 0.0, fail: object = None) -> None:
        self.seen: list[Any] = []
        self.lock = threading.Lock()
        self.sleep_s = sleep_s
        self.fail = fail

    def __call__(self, item: Item) -> None:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if item.value == self.fail:
            raise RuntimeError(f"bad item {item.value}")
        with self.lock:
            self.seen.append(item.value)

    def cancel_all(self) -> None:
        pass


def config(**overrides: Any) -> WorkerConfig:
    base: dict[str, Any] = {
        "worker_id": "w",
        "lease_s": 5.0,
        "poll_s": 0.05,
        "seed_wait_s": 5.0,
        "termination_log": "",  # never the machine's own, should it run in a container
    }
    return WorkerConfig(**{**base, **overrides})


def quiet() -> EventLog:
    return EventLog(level="error")


def seed(queue: RunQueue, values: list[object]) -> None:
    seed_items(queue, [encode(v) for v in values])


def test_worker_processes_every_item_once_and_exits_0(queue: RunQueue) -> None:
    seed(queue, list(range(300)))
    handler = Recorder()
    assert Worker(queue, handler, config(), quiet()).run() == EXIT_DRAINED
    assert sorted(handler.seen) == list(range(300))
    status = queue.reading.status()
    assert status.clean
    assert status.done == 300


class Together(Recorder):
    """Each item waits until three others are running too: if the slots ran items one by one,
    the barrier would break and every item would fail."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=30)

    def __call__(self, item: Item) -> None:
        self.barrier.wait()
        super().__call__(item)


def test_concurrent_slots_run_items_at_the_same_time(queue: RunQueue) -> None:
    seed(queue, list(range(40)))
    handler = Together(parties=4)
    worker = Worker(queue, handler, config(concurrency=8, max_attempts=1), quiet())
    assert worker.run() == EXIT_DRAINED
    assert sorted(handler.seen) == list(range(40))
    assert queue.reading.status().dead == 0


def count_leases(queue: RunQueue) -> list[int]:
    """The item count of every lease call the queue gets from now on."""
    calls: list[int] = []
    real_lease = queue.leases.lease

    def counting_lease(
        count: int, lease_s: float, token: str, results: Results | None = None
    ) -> LeaseReply:
        calls.append(count)
        return real_lease(count, lease_s, token, results)

    queue.leases.lease = counting_lease  # type: ignore[method-assign]
    return calls


def test_fast_items_cost_one_call_per_batch(queue: RunQueue) -> None:
    """Each lease records the batch finished before it: no call of its own to record them."""
    seed(queue, list(range(3000)))
    calls = count_leases(queue)
    completes: list[int] = []
    real_complete = queue.leases.complete

    def counting_complete(token: str, worker: str, done: Completions) -> list[int]:
        completes.append(len(done))
        return real_complete(token, worker, done)

    queue.leases.complete = counting_complete  # type: ignore[method-assign]
    assert Worker(queue, Recorder(), config(), quiet()).run() == EXIT_DRAINED
    assert queue.reading.status().done == 3000
    assert len(calls) >= 3  # batches of at most 1,000
    assert completes == []


def test_fast_items_are_leased_in_batches(queue: RunQueue) -> None:
    seed(queue, list(range(2000)))
    calls = count_leases(queue)
    assert Worker(queue, Recorder(), config(), quiet()).run() == EXIT_DRAINED
    assert len(calls) < 40
    assert max(calls) >= 100


def test_items_of_10_ms_or_more_are_recorded_as_each_one_finishes(queue: RunQueue) -> None:
    """So a worker killed between two such items leaves nothing finished unrecorded."""
    seed(queue, list(range(6)))
    completed: list[int] = []  # items recorded per call, by complete or by the next lease
    real_complete, real_lease = queue.leases.complete, queue.leases.lease

    def counting_complete(token: str, worker: str, positions: Sequence[int]) -> list[int]:
        completed.append(len(positions))
        return real_complete(token, worker, positions)

    def counting_lease(
        count: int, lease_s: float, token: str, results: Results | None = None
    ) -> LeaseReply:
        if results is not None:
            completed.append(len(results.done))
        return real_lease(count, lease_s, token, results)

    queue.leases.complete = counting_complete  # type: ignore[method-assign]
    queue.leases.lease = counting_lease  # type: ignore[method-assign]
    # Flushing on a timer alone would bundle these 20 ms items: the timer is made long.
    worker_config = config(batch_target_s=0.5, flush_interval_s=60)
    assert Worker(queue, Recorder(sleep_s=0.02), worker_config, quiet()).run() == EXIT_DRAINED
    assert completed == [1] * 6


class SlowAmongFast(Recorder):
    """Fast items but one slow one; notes, as each item starts, whether the slow one was
    recorded done (in Redis) by then."""

    def __init__(self, queue: RunQueue, slow: int) -> None:
        super().__init__()
        self.queue = queue
        self.slow = slow
        self.recorded_before: dict[int, bool] = {}

    def __call__(self, item: Item) -> None:
        if item.value == self.slow:
            time.sleep(0.05)
        elif item.value == self.slow + 1:
            self.recorded_before[item.value] = self.queue.reading.status().done > self.slow
        super().__call__(item)


def test_a_slow_item_among_fast_ones_is_recorded_before_the_next_starts(
    queue: RunQueue,
) -> None:
    """Fast items run inline several at a time, but a slow one ends its burst: it is recorded
    before the next item starts, as every item of 10 ms or more is."""
    seed(queue, list(range(600)))
    handler = SlowAmongFast(queue, slow=400)
    assert Worker(queue, handler, config(flush_interval_s=60), quiet()).run() == EXIT_DRAINED
    assert handler.recorded_before == {401: True}
    assert sorted(handler.seen) == list(range(600))


def test_slow_items_are_not_hoarded(queue: RunQueue) -> None:
    """Items slower than the batch target are leased one at a time, so other workers can
    take the rest."""
    seed(queue, list(range(8)))
    calls = count_leases(queue)
    handler = Recorder(sleep_s=0.1)
    assert Worker(queue, handler, config(batch_target_s=0.05), quiet()).run() == EXIT_DRAINED
    assert sorted(handler.seen) == list(range(8))
    assert set(calls) == {1}


def test_worker_waits_for_seeding(redis_url: str, run_id: str) -> None:
    worker_queue = make_queue(redis_url, run_id)
    handler = Recorder()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(Worker(worker_queue, handler, config(), quiet()).run())
    )
    checks: list[bool] = []
    real_is_seeded = worker_queue.reading.is_seeded

    def counting_is_seeded() -> bool:
        checks.append(real_is_seeded())
        return checks[-1]

    worker_queue.reading.is_seeded = counting_is_seeded  # type: ignore[method-assign]
    thread.start()
    wait_until("the worker to look for the seed twice", lambda: len(checks) >= 2, timeout=30)
    assert thread.is_alive()  # an unseeded run is not a drained run
    seeder_queue = make_queue(redis_url, run_id)
    seed(seeder_queue, ["late"])
    thread.join(10)
    assert result == [EXIT_DRAINED]
    assert handler.seen == ["late"]
    worker_queue.close()
    seeder_queue.close()


def test_seed_wait_is_bounded(queue: RunQueue) -> None:
    with pytest.raises(SeedTimeout, match=r"was not seeded within 0\.3s"):
        Worker(queue, Recorder(), config(seed_wait_s=0.3), quiet()).run()


def test_worker_waits_for_leases_held_elsewhere_and_reclaims_them(queue: RunQueue) -> None:
    seed(queue, ["mine", "orphan"])
    orphan = queue.leases.lease(1, 0.5, "a-worker-that-died").items
    assert [i.value for i in orphan] == ["mine"]
    handler = Recorder()
    assert Worker(queue, handler, config(), quiet()).run() == EXIT_DRAINED
    assert sorted(handler.seen) == ["mine", "orphan"]
    assert queue.reading.status().retried == 1
    # It was reclaimed through expiry, not taken from under the other worker's lease.
    assert queue.client.hget(queue.keys.errors, "0").startswith("its worker died 1 time")


def test_failing_item_goes_dead_and_fail_on_dead_exits_3(queue: RunQueue) -> None:
    seed(queue, ["ok", "poison", "fine"])
    handler = Recorder(fail="poison")
    code = Worker(queue, handler, config(max_attempts=2, fail_on_dead=True), quiet()).run()
    assert code == EXIT_DEAD_ITEMS
    assert sorted(handler.seen) == ["fine", "ok"]
    [dead] = list(iter_records(queue, states=(DEAD,)))
    assert (dead.item, dead.error) == ('"poison"', "bad item poison")
    assert queue.reading.status().retried == 1


def test_inline_item_timeout_interrupts_a_python_handler(queue: RunQueue) -> None:
    seed(queue, ["slow"])
    handler = Recorder(sleep_s=30)
    worker = Worker(queue, handler, config(item_timeout_s=0.2, max_attempts=1), quiet())
    assert worker.run() == EXIT_DRAINED
    assert handler.seen == []  # interrupted in its sleep, never finished
    [dead] = list(iter_records(queue, states=(DEAD,)))
    assert dead.error == "timed out after 0.2s"


def test_demo_handler_prints_like_the_docs_example(capsys: pytest.CaptureFixture[str]) -> None:
    handler = DemoHandler(0)
    handler(Item(0, 1, encode("apple")))
    handler(Item(1, 1, encode({"n": 1})))
    handler.cancel_all()  # what the worker's slots do as it ends
    assert capsys.readouterr().out == 'Working on apple\nWorking on {"n":1}\n'


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_worker_leaves_no_demo_line_unwritten(
    queue: RunQueue, capsys: pytest.CaptureFixture[str], concurrency: int
) -> None:
    """Held back for quick items, the lines are all out by the time the worker returns,
    inline or from slot threads."""
    seed(queue, list(range(300)))
    worker = Worker(queue, DemoHandler(0), config(concurrency=concurrency), quiet())
    assert worker.run() == EXIT_DRAINED
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == sorted(f"Working on {n}" for n in range(300))


class Writes(io.StringIO):
    """Standard output that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


def test_demo_lines_of_quick_items_go_out_together_in_whole_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whole lines, each write short enough for a pipe to take at once (4096 bytes): worker
    processes sharing one never interleave mid-line."""
    out = Writes()
    monkeypatch.setattr(sys, "stdout", out)
    handler = DemoHandler(0)
    items = [encode(f"item {n} \u00e9t\u00e9") for n in range(5000)]
    for n, raw in enumerate(items):
        handler(Item(n, 1, raw))
    handler.cancel_all()
    assert "".join(out.writes) == "".join(
        f"Working on item {n} \u00e9t\u00e9\n" for n in range(5000)
    )
    assert all(w.endswith("\n") and len(w.encode()) <= 4096 for w in out.writes)
    assert len(out.writes) <= 5000 / 10


def test_python_handler_gets_the_decoded_item() -> None:
    from tests.unit import sample_handlers

    handler = PythonHandler("tests.unit.sample_handlers:remember")
    handler(Item(0, 1, encode({"a": [1]})))
    handler(Item(1, 1, encode("plain")))
    assert sample_handlers.received[-2:] == [{"a": [1]}, "plain"]
    with pytest.raises(Exception, match="not MODULE:FUNCTION"):
        PythonHandler("json.dumps")
    with pytest.raises(Exception, match="cannot import"):
        PythonHandler("no_such_module_x:f")
    with pytest.raises(Exception, match="has no function"):
        PythonHandler("json:nope")


def command_item(value: object) -> Item:
    return Item(7, 1, encode(value))


def test_command_arguments_are_templates_passed_without_a_shell(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = "import os, sys; print(sys.argv[1:], os.environ['WQ_ITEM'])"
    handler = CommandHandler(
        ["python3", "-c", script, "{{ item.src }}", "{{ item.dst }}", "$HOME;*"], False, 0
    )
    handler(command_item({"src": "a b.png", "dst": "c'd.jpg"}))
    out = capsys.readouterr().out
    assert out == (
        """[item 7] ['a b.png', "c'd.jpg", '$HOME;*'] {"src":"a b.png","dst":"c'd.jpg"}\n"""
    )


# A structured item with every kind of JSON value, nested.
STRUCTURED = {
    "src": "a b.png",
    "meta": {"w": 2, "tags": ["x", None], "ok": False, "name": "é"},
    "flag": True,
    "none": None,
    "n": 1.5,
    "list": [1, "two"],
}
STRUCTURED_FIELDS = ["item", "item.src", "item.meta", "item.flag", "item.none", "item.n"]
STRUCTURED_TEXT = [
    '{"src":"a b.png","meta":{"w":2,"tags":["x",null],"ok":false,"name":"é"},"flag":true,'
    '"none":null,"n":1.5,"list":[1,"two"]}',
    "a b.png",
    '{"w":2,"tags":["x",null],"ok":false,"name":"é"}',
    "true",
    "null",
    "1.5",
]


@pytest.mark.parametrize("shell", [False, True], ids=["argv", "shell"])
def test_command_values_are_text_or_compact_json_never_python_reprs(
    shell: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Strings as themselves; null, true, numbers, dicts and lists as compact JSON (the form
    of $WQ_ITEM), in both modes; with the shell each value stays one word."""
    tags = ["{{ " + field + " }}" for field in STRUCTURED_FIELDS]
    # One value per line, so that a value split into words would show.
    command = ["printf", "'%s\\n'" if shell else "%s\\n", *tags]
    CommandHandler(command, shell, 0)(command_item(STRUCTURED))
    out = capsys.readouterr().out
    assert out == "".join(f"[item 7] {text}\n" for text in STRUCTURED_TEXT)


def test_command_with_shell_and_plain_string_item(capsys: pytest.CaptureFixture[str]) -> None:
    CommandHandler(['echo "$WQ_ITEM" | tr a-z A-Z'], True, 0)(command_item("apple pie"))
    assert capsys.readouterr().out == "[item 7] APPLE PIE\n"


def test_command_exit_code_decides_and_names_the_last_output_line() -> None:
    handler = CommandHandler(["sh", "-c", "echo working; echo 'disk full' >&2; exit 4"], False, 0)
    with pytest.raises(HandlerFailed, match="exited with code 4: disk full"):
        handler(command_item("x"))


def test_command_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    handler = CommandHandler(
        ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], False, timeout_s=0.3
    )
    with pytest.raises(HandlerFailed, match=r"timed out after 0\.3s"):
        handler(command_item("x"))
    child = int(pidfile.read_text())
    wait_until("the killed group's child to be gone", lambda: not is_running(child), timeout=10)


def is_running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may wait a while for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_command_errors_name_the_problem() -> None:
    with pytest.raises(HandlerFailed, match="cannot run 'no-such-binary-x'"):
        CommandHandler(["no-such-binary-x"], False, 0)(command_item("x"))
    with pytest.raises(HandlerFailed, match="'str object' has no attribute 'src'"):
        CommandHandler(["echo", "{{ item.src }}"], False, 0)(command_item("plain"))
    with pytest.raises(Exception, match="command template is invalid"):
        CommandHandler(["echo", "{{ item"], False, 0)


def test_command_handler_under_a_worker_with_concurrency(queue: RunQueue, tmp_path: Path) -> None:
    seed(queue, [f"f{i}" for i in range(12)])
    out = tmp_path / "out"
    out.mkdir()
    handler = CommandHandler(["sh", "-c", f'touch "{out}/$WQ_ITEM"'], False, 10)
    assert Worker(queue, handler, config(concurrency=4), quiet()).run() == EXIT_DRAINED
    assert Counter(p.name for p in out.iterdir()) == Counter(f"f{i}" for i in range(12))


# Items that run code if pasted into a shell line unquoted, or between quotes; DIR is where
# they would leave their mark.
HOSTILE_ITEMS = [
    "$(touch DIR/pwned)",
    "`touch DIR/pwned2`",
    "a; touch DIR/pwned3",
    "x\ntouch DIR/pwned4",
    "'; touch DIR/pwned5; '",
    '"; touch DIR/pwned6; "',
    "$(touch DIR/pwned7)'\"",
    "{{ 7 * 7 }} {% if true %}pwned8{% endif %}",  # item text is never a template either
    "-n",  # nor an option of printf
]


@pytest.mark.parametrize("shell", [True, False], ids=["shell", "argv"])
def test_items_never_run_as_code(queue: RunQueue, tmp_path: Path, shell: bool) -> None:
    """Issue 9 (13): through a real worker, each item reaches the command as one argument,
    intact, and none of its text runs, with or without the shell."""
    marks = tmp_path / "marks"
    got = tmp_path / "got"
    marks.mkdir()
    got.mkdir()
    items = [text.replace("DIR", str(marks)) for text in HOSTILE_ITEMS]
    seed(queue, items)
    if shell:
        command = ["printf %s {{ item }} >", shlex.quote(str(got)) + '/"$WQ_ITEM_POSITION"']
    else:
        command = ["sh", "-c", 'printf %s "$1" > "$0/$WQ_ITEM_POSITION"', str(got), "{{ item }}"]
    handler = CommandHandler(command, shell, 30)
    assert Worker(queue, handler, config(max_attempts=1), quiet()).run() == EXIT_DRAINED
    assert sorted(p.name for p in marks.iterdir()) == []
    assert list(iter_records(queue, states=(DEAD,))) == []
    assert {int(p.name): p.read_text() for p in got.iterdir()} == dict(enumerate(items))


class SlowBesideIdle:
    """One item longer than its lease, run by a slow worker (started at once); and an idle
    worker beside it, polling with the same lease, that reclaims the item if its lease ever
    runs out. Both share the run of `queues`."""

    def __init__(self, queues: list[RunQueue], lease_s: float, item_s: float) -> None:
        self.queues = queues
        seed(queues[0], ["long"])
        self.slow, self.idle = Recorder(sleep_s=item_s), Recorder()
        slow = Worker(queues[0], self.slow, config(worker_id="slow", lease_s=lease_s), quiet())
        self.idle_worker = Worker(
            queues[1], self.idle, config(worker_id="idle", lease_s=lease_s, poll_s=0.05), quiet()
        )
        self.first = threading.Thread(target=slow.run)
        self.first.start()
        # The slow worker holds the item before the other starts polling.
        wait_until(
            "the slow worker to lease", lambda: queues[1].reading.status().in_flight == 1, 30
        )

    def assert_the_item_ran_once(self) -> None:
        self.first.join(30)
        status = self.queues[0].reading.status()
        assert (self.slow.seen, self.idle.seen) == (["long"], [])
        assert (status.retried, status.executions, status.done) == (0, 1, 1)
        for q in self.queues:
            q.close()


def test_heartbeat_keeps_an_item_longer_than_its_lease(redis_url: str, run_id: str) -> None:
    """A 2 s item under a 0.6 s lease is not reclaimed by a second worker polling beside it."""
    pair = SlowBesideIdle([make_queue(redis_url, run_id) for _ in range(2)], 0.6, 2.0)
    assert pair.idle_worker.run() == EXIT_DRAINED
    pair.assert_the_item_ran_once()


def test_a_run_purged_while_workers_run_ends_as_lost(redis_url: str, run_id: str) -> None:
    queue, other = make_queue(redis_url, run_id), make_queue(redis_url, run_id)
    seed(queue, list(range(50)))

    worker = Worker(queue, PurgeOnFirst(other), config(), quiet())
    with pytest.raises(RunLost, match="was seeded but its keys are gone"):
        worker.run()
    queue.close()
    other.close()


class PurgeOnFirst(Recorder):
    """Purges the run (as `wq purge` or a FLUSHALL would) while its first item runs."""

    def __init__(self, purger: RunQueue) -> None:
        super().__init__()
        self.purger = purger

    def __call__(self, item: Item) -> None:
        if item.position == 0:
            self.purger.admin.purge()
        super().__call__(item)


def test_the_heartbeat_rides_out_a_busy_redis(tmp_path: Path) -> None:
    """BUSY (another client's long script) is an error reply, not a lost connection: the
    heartbeat must retry it, not die and let a healthy item's lease expire."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    admin = server.connect()
    admin.config_set("busy-reply-threshold", 100)  # BUSY after 0.1 s of a running script
    run = "busy"
    settings = RedisSettings.from_url(server.url)
    busy_seen = threading.Event()  # the slow worker's own calls met BUSY and are retrying it
    retrying = Retrying(
        settings, 30, on_retry=lambda _, exc: busy_seen.set() if "BUSY" in str(exc) else None
    )
    queues = [RunQueue(settings.client(), run, retrying), make_queue(server.url, run, budget=30)]
    pair = SlowBesideIdle(queues, lease_s=3.0, item_s=8.0)
    second = threading.Thread(target=pair.idle_worker.run)
    second.start()

    def block() -> None:
        with contextlib.suppress(redis.ResponseError):  # "script killed by user"
            server.connect().eval("while true do end", 0)

    blocker = threading.Thread(target=block)
    blocker.start()
    wait_until("Redis to answer BUSY", lambda: _answers_busy(server), 30)
    # The slow worker's queue is used only by its heartbeat while the item runs: once that
    # heartbeat has met BUSY (and retries it), end the outage.
    wait_until("the heartbeat to meet BUSY", busy_seen.is_set, 30)
    admin.script_kill()
    blocker.join(30)
    second.join(30)
    pair.assert_the_item_ran_once()
    admin.close()
    server.stop()


def _answers_busy(server: RedisServer) -> bool:
    client = server.connect()
    try:
        client.ping()
        return False
    except redis.ResponseError as exc:
        return str(exc).startswith("BUSY")
    finally:
        client.close()


def test_a_finished_item_is_not_reported_as_a_lost_lease(queue: RunQueue) -> None:
    """The heartbeat may renew from a snapshot taken before the main loop recorded a whole
    batch: its lease, gone with its last item, is not a lost one."""
    seed(queue, ["a", "b"])
    stream = io.StringIO()
    log = EventLog(level="warning", stream=stream)
    held = Held()
    token = "t"
    held.add(
        token, [i.position for i in queue.leases.lease(2, 30, token).items], time.monotonic() + 30
    )
    real_renew = queue.leases.renew

    def renew_after_a_flush(tokens: Sequence[str], lease_s: float) -> list[str]:
        held.remove(token, [0, 1])  # the main loop's flush: forget, then record
        queue.leases.complete(token, "w", [0, 1])
        lost = real_renew(tokens, lease_s)
        assert lost == [token]  # the batch is done: its lease went with its last item
        return lost

    queue.leases.renew = renew_after_a_flush  # type: ignore[method-assign]
    Heartbeat(queue, held, config(lease_s=30), log).beat()
    assert "lease.lost" not in stream.getvalue()
    assert held.snapshot() == {}


# The summary a worker leaves as it exits.


class StopOnFirst(Recorder):
    """Asks its worker to stop (as SIGTERM does) while the first item runs."""

    def __init__(self) -> None:
        super().__init__()
        self.worker: Worker | None = None

    def __call__(self, item: Item) -> None:
        super().__call__(item)
        if self.worker is not None:
            self.worker.stop.set()


def summary_event(stream: io.StringIO) -> str:
    [line] = [x for x in stream.getvalue().splitlines() if "event=worker.summary" in x]
    return line


@pytest.mark.parametrize("ending", ["drained", "dead_items", "stopped", "lost"])
def test_a_worker_says_what_it_did_in_its_log_and_termination_message(
    redis_url: str, run_id: str, tmp_path: Path, ending: str
) -> None:
    queue, other = make_queue(redis_url, run_id), make_queue(redis_url, run_id)
    seed(queue, ["ok", "poison", "fine"])
    message = tmp_path / "termination-log"
    message.touch()  # Kubernetes provides the file; the worker never creates it
    stream = io.StringIO()
    handlers: dict[str, Recorder] = {
        "drained": Recorder(fail="poison"),
        "dead_items": Recorder(fail="poison"),
        "stopped": StopOnFirst(),
        "lost": PurgeOnFirst(other),
    }
    handler = handlers[ending]
    worker_config = config(
        max_attempts=2, fail_on_dead=ending == "dead_items", termination_log=str(message)
    )
    worker = Worker(queue, handler, worker_config, EventLog(stream=stream))
    if isinstance(handler, StopOnFirst):
        handler.worker = worker
    if ending == "lost":
        with pytest.raises(RunLost):
            worker.run()
    else:
        worker.run()
    expected = {
        "drained": ("drained (exit 0): 2 item(s) processed, 2 failed attempt(s)", 2, 2),
        "dead_items": ("drained with dead items (exit 3): 2 item(s) processed, 2 failed", 2, 2),
        "stopped": ("stopped (exit 143): 1 item(s) processed, 0 failed attempt(s)", 1, 0),
        "lost": ("lost its run (its keys are gone) (exit 4): 0 item(s) processed", 0, 0),
    }
    text, processed, failed = expected[ending]
    [line] = message.read_text().splitlines()
    assert line.startswith(f"worker w of run {run_id} {text}"), line
    assert "mean item time " in line
    event = summary_event(stream)
    assert f"reason={ending} " in event
    assert f" processed={processed} failed={failed} " in event
    queue.close()
    other.close()


def test_no_termination_message_file_no_summary_file(queue: RunQueue, tmp_path: Path) -> None:
    """Outside Kubernetes the file does not exist: it is not created, and nothing fails."""
    seed(queue, ["a"])
    absent = tmp_path / "termination-log"
    stream = io.StringIO()
    worker = Worker(queue, Recorder(), config(termination_log=str(absent)), EventLog(stream=stream))
    assert worker.run() == EXIT_DRAINED
    assert not absent.exists()
    assert "reason=drained" in summary_event(stream)
    assert "level=warning" not in stream.getvalue()


def test_an_items_time_moves_the_same_whether_items_come_alone_or_in_a_run() -> None:
    """Batch sizes and handler windows follow a moving average of an item's time; a run of
    answers (Ran) moves it at once as its items one by one would."""
    assert moving_average(None, 4.0, 3) == 4.0
    one_by_one: float | None = 10.0
    for _ in range(7):
        one_by_one = moving_average(one_by_one, 2.0, 1)
    assert one_by_one == pytest.approx(moving_average(10.0, 2.0, 7))
    assert moving_average(10.0, 2.0, 1) == pytest.approx(8.4)
