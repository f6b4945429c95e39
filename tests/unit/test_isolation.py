"""The python handler isolated from the worker (wq.work.supervisor): items that take the
handler's process down (killed, crashed, exited, hung, its process group killed) fail at once
with their reason, the other items are not charged, and the worker drains and exits 0."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.poison import REASONS
from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from wq.base.collector import GC_THRESHOLD
from wq.base.errors import ConfigError
from wq.base.item import Item, encode
from wq.base.logs import EventLog
from wq.base.options import WorkerConfig
from wq.read.ledger import DEAD, DONE, iter_records
from wq.seed.seeder import seed_items
from wq.store.queue import RunQueue
from wq.work.child import item_decoder, natural_numbers
from wq.work.handlers import PythonHandler, build_handler
from wq.work.memory_limit import container_limit, per_process
from wq.work.outcome import HandlerFailed, Outcome, Ran
from wq.work.slots import InlineSlots
from wq.work.supervisor import HandlerProcesses
from wq.work.worker import EXIT_DRAINED, Worker

POISON = "tests.poison:handle"


def config(**overrides: Any) -> WorkerConfig:
    base: dict[str, Any] = {
        "handler": "python",
        "python": POISON,
        "worker_id": "w",
        "lease_s": 5.0,
        "poll_s": 0.05,
        "seed_wait_s": 5.0,
        "termination_log": "",
    }
    return WorkerConfig(**{**base, **overrides})


def work(queue: RunQueue, cfg: WorkerConfig) -> int:
    return Worker(queue, build_handler(cfg), cfg, EventLog(level="error")).run()


@pytest.mark.parametrize("concurrency", [1, 2])
def test_items_that_take_the_handler_process_down_fail_alone_and_at_once(
    queue: RunQueue, concurrency: int
) -> None:
    kinds = [k for k in REASONS if k != "allocate"]  # a real memory limit: the e2e test
    plain = [f"item-{n}" for n in range(40)]
    values = plain[:]
    for n, kind in enumerate(kinds):
        values.insert(5 * n + 3, kind)
    seed_items(queue, [encode(v) for v in values])
    cfg = config(concurrency=concurrency, max_attempts=2, item_timeout_s=2.0)
    assert work(queue, cfg) == EXIT_DRAINED

    records = {r.item: r for r in iter_records(queue)}
    for kind in kinds:
        r = records[json.dumps(kind)]
        assert (r.state, r.attempts) == (DEAD, 2), r
        assert r.error is not None
        assert r.error.startswith(REASONS[kind]), r
    assert records[json.dumps("hang")].error == (
        "the handler process did not finish within the item timeout of 2 s (killed)"
    )
    assert records[json.dumps("exit")].error == (
        "the handler process exited with status 3 (os._exit, or exit() in C code)"
    )
    for value in plain:
        r = records[json.dumps(value)]
        assert (r.state, r.attempts) == (DONE, 1), r
    status = queue.reading.status()
    assert (status.done, status.dead, status.pending, status.in_flight) == (40, len(kinds), 0, 0)


def test_an_item_past_the_memory_limit_fails_alone_with_memory_error(queue: RunQueue) -> None:
    """The container's out-of-memory kill would take the worker too (cgroup v2 kills the
    whole container): under --python-memory-limit the function gets MemoryError instead."""
    values = [f"item-{n}" for n in range(20)]
    values.insert(7, "allocate")
    seed_items(queue, [encode(v) for v in values])
    cfg = config(max_attempts=2, python_memory_limit=256)
    assert work(queue, cfg) == EXIT_DRAINED

    records = {r.item: r for r in iter_records(queue)}
    r = records[json.dumps("allocate")]
    assert (r.state, r.attempts) == (DEAD, 2), r
    assert r.error == (
        "the handler process ran out of memory (MemoryError at its limit of 256 MiB, "
        "--python-memory-limit)"
    )
    assert {(r.state, r.attempts) for r in records.values() if r.state == DONE} == {(DONE, 1)}
    assert queue.reading.status().done == 20


def test_the_memory_limit_of_each_handler_process() -> None:
    assert per_process(300, 4) == 300 << 20  # as given, for each
    assert per_process(-1, 1) is None
    limit = container_limit()
    if limit is None:  # no limit here (as on CI's machine): the share of none is none
        assert per_process(0, 2) is None
    else:  # in a container: half of what the worker leaves, each
        share = per_process(0, 2)
        assert share is not None
        assert 0 < 2 * share < limit


def test_a_handler_process_is_started_once_and_kept(tmp_path: Path) -> None:
    """Warm: every item of a slot runs in the same process; a MemoryError is an exception
    like any other, which it lives through."""
    os.environ["WQ_TEST_LOG_DIR"] = str(tmp_path)
    try:
        handler = HandlerProcesses(POISON, 1, 0, 65536)
        try:
            assert handler(Item(0, 1, encode("plain"))) is None
            for n in range(2):
                with pytest.raises(HandlerFailed, match=r"^MemoryError$"):
                    handler(Item(1 + n, 1, encode("memoryerror")))
            [pid] = {
                line.split()[1]
                for line in (tmp_path / "poison.log").read_text().split("\n")
                if line
            }
            assert [str(c.pid) for c in handler.children] == [pid]
        finally:
            handler.close()
    finally:
        del os.environ["WQ_TEST_LOG_DIR"]


def test_outputs_and_errors_come_back_from_the_handler_process() -> None:
    handler = HandlerProcesses("tests.unit.sample_handlers:exits", 1, 0, 65536)
    try:
        assert handler(Item(0, 1, encode({"a": "é"}))) == json.dumps(
            "{'a': 'é'}", ensure_ascii=False
        )
        with pytest.raises(HandlerFailed, match=r"^the function called sys.exit\(7\)$"):
            handler(Item(1, 1, encode("exit")))
    finally:
        handler.close()
    small = HandlerProcesses("tests.unit.sample_handlers:exits", 1, 0, 4)
    try:
        with pytest.raises(HandlerFailed, match="over the limit of 4 bytes"):
            small(Item(0, 1, encode("longer")))
    finally:
        small.close()


@pytest.mark.parametrize("isolation", ["process", "none"])
def test_answers_come_back_in_order_each_to_its_lease(isolation: str) -> None:
    """Items of two leases given to the slots at once: items with no output come back as
    runs, outputs and failures one by one, each under its own token, all in order; isolated
    or in the worker's process."""
    target = "tests.unit.sample_handlers:every_fifth_answers"
    slots: HandlerProcesses | InlineSlots = (
        HandlerProcesses(target, 1, 0, 65536)
        if isolation == "process"
        else InlineSlots(PythonHandler(target), 0.0, slow_s=10.0)
    )
    items = [Item(n, 1, str(n)) for n in range(100)]
    ended: list[Outcome | Ran] = []
    try:
        for token, lease in (("a", items[:50]), ("b", items[50:])):
            assert slots.submit_many(token, lease) == len(lease)
        deadline = time.monotonic() + 60
        while sum(len(e.items) if isinstance(e, Ran) else 1 for e in ended) < len(items):
            assert time.monotonic() < deadline, ended
            ended += slots.results(0.1)
    finally:
        slots.close()
    seen = []
    for e in ended:
        if isinstance(e, Ran):
            seen += [(e.token, i.position, None, None) for i in e.items]
            assert len(e.durations_ns) == len(e.items)
        else:
            seen.append((e.token, e.item.position, e.error, e.output))
    assert seen == [
        (
            "a" if n < 50 else "b",
            n,
            f"{n} fails" if n % 5 == 3 else None,
            str(n) if n % 5 == 1 else None,
        )
        for n in range(100)
    ]
    assert any(isinstance(e, Ran) and len(e.items) > 1 for e in ended), "no run of answers"


@pytest.mark.parametrize("isolation", ["process", "none"])
def test_a_function_runs_under_pythons_own_garbage_collector(
    queue: RunQueue, redis_url: str, run_id: str, isolation: str
) -> None:
    """`wq work` tunes the collector for its own hot path (wq.base.collector), never for a
    user's function, in its process or in the worker's: what a function leaves in cycles goes
    as soon as it would anywhere."""
    seed_items(queue, [encode("x")])
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    target = "tests.unit.sample_handlers:collector_state"
    args = ("--handler", "python", "--python", target, "--python-isolation", isolation)
    assert wq("work", *args, env=env).returncode == 0
    [record] = iter_records(queue)
    threshold, frozen = json.loads(record.output or "null")
    assert threshold != GC_THRESHOLD
    assert frozen == 0


def test_a_function_that_cannot_be_imported_is_a_config_error_at_start() -> None:
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_x'"):
        HandlerProcesses("no_such_module_x:f", 2, 0, 65536)
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        build_handler(config(python="json:nope"))


def test_sigterm_stops_the_handler_processes_and_hands_the_item_back(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id, "WQ_TEST_LOG_DIR": str(tmp_path)}
    worker = subprocess.Popen(
        wq_argv("work", "--handler", "python", "--python", POISON),
        env=wq_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pid = hanging(env, tmp_path)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 128 + signal.SIGTERM, worker.stderr and worker.stderr.read()
    finally:
        worker.kill()
        worker.wait()
        if worker.stderr:
            worker.stderr.close()
    wait_until("the handler process to be gone", lambda: not _alive(pid), 10)
    status = json.loads(wq("status", "--json", env=env).stdout)
    assert (status["pending"], status["dead"]) == (1, 0), status


def hanging(env: dict[str, str], tmp_path: Path) -> int:
    """Seeds one item that hangs, once a worker is started on env's run; returns the pid of
    the handler process that runs it, once it has started it."""
    assert wq("seed", "hang", env=env).returncode == 0
    log = tmp_path / "poison.log"
    line = wait_until("the item to start", lambda: log.exists() and log.read_text(), 60)
    return int(line.split()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is gone


def test_a_worker_killed_with_sigkill_takes_its_handler_processes_along(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    """No orphan runs on with the item (or the items queued behind it) that another worker
    will run again once the lease expires."""
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id, "WQ_TEST_LOG_DIR": str(tmp_path)}
    worker = subprocess.Popen(
        wq_argv("work", "--handler", "python", "--python", POISON),
        env=wq_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pid = hanging(env, tmp_path)
        worker.kill()
    finally:
        worker.kill()
        worker.wait()
    wait_until("the handler process to be gone", lambda: not _alive(pid), 10)


@pytest.mark.parametrize(
    "texts",
    [
        ["0", "7", "1234567890123456789012345"],  # a range run's frame: int() at once
        ["12", '"12"', "-3", "1.5", "1e3", '{"a":[1,2]}', "null", "true"],
        ['"0"', '"١٢"', "[]"],  # digits as strings (Arabic-Indic too) stay strings
        ["5", "6", '"7"'],
    ],
)
def test_a_handler_process_reads_each_item_as_its_json_text_says(texts: list[str]) -> None:
    """A frame read at once with int() when every item is a natural number, and item by
    item otherwise: either way each value is what json.loads makes of its text."""
    payload = bytearray("\n".join(texts).encode())
    read = int if natural_numbers(payload) else item_decoder()
    values = [read(text) for text in payload.decode().split("\n")]
    assert values == [json.loads(t) for t in texts]
    assert [type(v) for v in values] == [type(json.loads(t)) for t in texts]
    assert natural_numbers(payload) == all(t.isdigit() and t.isascii() for t in texts)
