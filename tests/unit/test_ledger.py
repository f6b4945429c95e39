"""Per-item records and outputs against a real Redis: what the ledger says of every item,
outputs fenced by the lease token, the size limit, and the accounting of `status --check`."""

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.polling import wait_until
from wq.base.item import Item, encode
from wq.base.logs import EventLog
from wq.base.options import WorkerConfig
from wq.read.ledger import DEAD, DONE, IN_FLIGHT, PENDING, ItemRecord, account, iter_records
from wq.seed.seeder import seed_items
from wq.store import layout
from wq.store.completions import Finished
from wq.store.leases import FailOutcome, Reaped
from wq.store.queue import RunQueue
from wq.work.command_handler import CommandHandler
from wq.work.handlers import PythonHandler
from wq.work.outputs import OutputRefused
from wq.work.worker import EXIT_DRAINED, Worker


def seed(queue: RunQueue, values: list[object]) -> None:
    seed_items(queue, [encode(v) for v in values])


def server_ms(queue: RunQueue) -> int:
    seconds, micros = queue.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def records(queue: RunQueue) -> dict[int, ItemRecord]:
    return {r.position: r for r in iter_records(queue)}


def expire_lease(queue: RunQueue) -> None:
    wait_until("a lease to expire", lambda: queue.leases.lease(0, 30, "probe").expired_leases, 10)


def test_records_of_done_dead_retried_pending_and_in_flight_items(queue: RunQueue) -> None:
    seed(queue, ["a", "b", "c", "d", "e", {"f": 6}])
    before = server_ms(queue)
    held = queue.leases.lease(6, 30, "t").items
    assert [i.position for i in held] == [0, 1, 2, 3, 4, 5]
    assert queue.leases.complete("t", "pod-a", [Finished(0, 12, '{"n":1}'), Finished(5, 7)]) == []
    fail = queue.leases.fail
    assert fail("t", 1, "first try failed", 3, worker="pod-a", duration_ms=3) is FailOutcome.RETRY
    assert fail("t", 2, "poison", 1, worker="pod-b", duration_ms=40) is FailOutcome.DEAD
    assert queue.leases.release("t", [4]) == 1  # e: pending again; d stays in flight
    [again] = queue.leases.lease(1, 30, "u").items
    assert (again.position, again.attempt) == (4, 1)  # released first, uncharged
    assert queue.leases.release("u", [4]) == 1
    [retried] = [i for i in queue.leases.lease(2, 30, "v").items if i.position == 1]
    assert retried.attempt == 2
    assert queue.leases.complete("v", "pod-c", [Finished(1, 25)]) == []
    queue.leases.release("v", [4])
    after = server_ms(queue)

    got = records(queue)
    assert [got[p].state for p in range(6)] == [DONE, DONE, DEAD, IN_FLIGHT, PENDING, DONE]
    assert [got[p].item for p in range(6)] == [encode(v) for v in "abcde"] + ['{"f":6}']
    a, b, c, d, e, f = (got[p] for p in range(6))
    assert (a.attempts, a.duration_ms, a.worker, a.output, a.error) == (
        1,
        12,
        "pod-a",
        '{"n":1}',
        None,
    )
    assert (b.attempts, b.duration_ms, b.worker, b.output) == (2, 25, "pod-c", None)
    assert b.error == "first try failed"  # the last failed attempt's error stays on record
    assert (c.attempts, c.duration_ms, c.worker, c.error) == (1, 40, "pod-b", "poison")
    assert (f.duration_ms, f.output) == (7, None)
    for finished in (a, b, c, f):
        assert finished.finished_ms is not None
        assert before <= finished.finished_ms <= after
    for open_item in (d, e):
        assert (open_item.worker, open_item.finished_ms, open_item.duration_ms) == (None,) * 3
        assert (open_item.attempts, open_item.output) == (0, None)
    # Filtered by state, still in seed order.
    assert [r.position for r in iter_records(queue, states=(DONE, PENDING))] == [0, 1, 4, 5]


def test_an_item_whose_worker_died_is_dead_with_no_worker_and_no_duration(
    queue: RunQueue,
) -> None:
    seed(queue, ["killer"])
    queue.leases.lease(1, 0.05, "died")
    expire_lease(queue)
    assert queue.leases.reap(max_attempts=1) == Reaped(requeued=0, dead=1)
    [r] = iter_records(queue)
    assert (r.state, r.attempts, r.worker, r.duration_ms) == (DEAD, 1, None, None)
    assert r.error == "its worker died 1 time while processing it (its lease expired)"


def test_retry_dead_clears_the_record_until_the_item_is_done_again(queue: RunQueue) -> None:
    seed(queue, ["x", "y"])
    queue.leases.lease(1, 30, "t")
    assert queue.leases.fail("t", 0, "bad", 1, worker="w1") is FailOutcome.DEAD
    assert records(queue)[0].state == DEAD
    assert queue.admin.retry_dead() == 1
    assert records(queue)[0].state == PENDING
    [item] = queue.leases.lease(1, 30, "u").items
    assert queue.leases.complete("u", "w2", [Finished(item.position, 5, '"ok"')]) == []
    r = records(queue)[0]
    assert (r.state, r.attempts, r.worker, r.output, r.error) == (DONE, 1, "w2", '"ok"', "bad")


@pytest.mark.parametrize("late_first", [True, False], ids=["late-before", "late-after"])
def test_a_late_result_leaves_the_accepted_output_intact(queue: RunQueue, late_first: bool) -> None:
    """A worker whose lease was taken over finishes anyway: its output is not stored, before
    or after the new holder's, and the accepted record stays the new holder's."""
    seed(queue, ["contested", "other"])
    queue.leases.lease(1, 0.05, "slow")
    expire_lease(queue)
    queue.leases.reap(max_attempts=3)
    [item] = queue.leases.lease(1, 30, "fast").items
    assert item.attempt == 2  # leased alone, its expiry was charged an attempt
    late = Finished(0, 900, '"late result"')
    if late_first:
        assert queue.leases.complete("slow", "slow-pod", [late]) == [0]
    assert queue.leases.complete("fast", "fast-pod", [Finished(0, 10, '"accepted"')]) == []
    if not late_first:
        assert queue.leases.complete("slow", "slow-pod", [late]) == [0]
        late_failure = queue.leases.fail("slow", 0, "late failure", 3, worker="slow-pod")
        assert late_failure is FailOutcome.STALE
    r = records(queue)[0]
    assert (r.state, r.worker, r.duration_ms, r.output) == (DONE, "fast-pod", 10, '"accepted"')
    assert r.attempts == 2
    assert queue.client.hgetall(queue.keys.outputs) == {"0": '"accepted"'}
    assert queue.reading.status().done == 1


def test_many_outputs_go_in_bounded_calls(queue: RunQueue) -> None:
    seed(queue, list(range(2500)))
    text = json.dumps("x" * 3000)  # 1000 x 3 KB a batch: several calls of about 1 MiB
    for token in ("t", "u", "v"):
        held = queue.leases.lease(1000, 30, token).items
        finished = [
            Finished(i.position, i.position, text if i.position % 2 else None) for i in held
        ]
        assert queue.leases.complete(token, "w", finished) == []
    got = list(iter_records(queue))
    assert [r.state for r in got] == [DONE] * 2500
    assert [r.duration_ms for r in got] == list(range(2500))
    assert [r.output for r in got] == [text if p % 2 else None for p in range(2500)]


def test_accounting_finds_every_position_once_or_names_what_is_wrong(queue: RunQueue) -> None:
    seed(queue, list(range(70)))
    assert not account(queue).exact  # nothing finished yet
    held = queue.leases.lease(70, 30, "t").items
    queue.leases.fail("t", 3, "boom", 1)
    assert queue.leases.complete("t", "w", [i.position for i in held if i.position != 3]) == []
    checked = account(queue)
    assert checked.exact, checked.summary()
    assert (checked.done, checked.dead, checked.total) == (69, 1, 70)
    assert checked.summary() == "every position accounted for once: 69 done + 1 dead = 70 total"
    # A position both done and dead-lettered (only a bug, or a hand, could do that) is named.
    queue.client.hset(queue.keys.dead, "40", "forged")
    forged = account(queue)
    assert not forged.exact
    assert "1 position(s) in two states: 40 (done and dead)" in forged.summary()
    assert "the dead-letter hash holds 2, the ledger 1" in forged.summary()


# Outputs from the handlers, through a real worker.


class Returns:
    """A python handler returning what `make` makes of the item."""

    enforces_own_timeout = False

    def __init__(self, make: Any, limit: int = 65536) -> None:
        self.make = make
        self.limit = limit

    def __call__(self, item: Item) -> str | None:
        from wq.work.outputs import json_output

        return json_output(self.make(item.value), self.limit)

    def cancel_all(self) -> None:
        pass


def run_worker(queue: RunQueue, handler: Any, **overrides: Any) -> int:
    base: dict[str, Any] = {
        "worker_id": "w",
        "lease_s": 5.0,
        "poll_s": 0.05,
        "seed_wait_s": 5.0,
        "termination_log": "",
    }
    return Worker(queue, handler, WorkerConfig(**{**base, **overrides}), EventLog("error")).run()


def test_a_python_handlers_return_values_are_the_outputs(queue: RunQueue) -> None:
    seed(queue, ["one", "two", "three", "skip"])

    def make(value: str) -> object:
        return None if value == "skip" else {"word": value, "length": len(value), "ok": True}

    assert run_worker(queue, Returns(make)) == EXIT_DRAINED
    got = list(iter_records(queue))
    outputs = [json.loads(r.output) if r.output else None for r in got]
    assert outputs == [make(v) for v in ["one", "two", "three", "skip"]]
    assert all(r.worker == "w" and r.state == DONE for r in got)


def test_an_output_over_the_limit_fails_the_attempt_with_its_reason(queue: RunQueue) -> None:
    seed(queue, [10, 200, 20])
    handler = Returns(lambda n: "x" * n, limit=100)
    assert run_worker(queue, handler, max_attempts=2) == EXIT_DRAINED
    small, big, other = (records(queue)[p] for p in range(3))
    assert (small.state, small.output) == (DONE, json.dumps("x" * 10))
    assert (other.state, other.output) == (DONE, json.dumps("x" * 20))
    assert (big.state, big.attempts, big.output) == (DEAD, 2, None)
    assert big.error is not None
    assert big.error.startswith(
        "the return value, as JSON, is 202 bytes, over the limit of 100 bytes "
        "(--max-output-bytes); it was not stored"
    )
    assert queue.client.hkeys(queue.keys.outputs) == ["0", "2"]


def test_a_return_value_json_cannot_hold_fails_the_attempt() -> None:
    handler = PythonHandler("tests.unit.sample_handlers:remember")
    assert handler(Item(0, 1, encode("x"))) is None
    with pytest.raises(OutputRefused, match="cannot be stored as JSON"):
        Returns(lambda v: {1, 2})(Item(0, 1, encode("x")))
    with pytest.raises(OutputRefused, match="cannot be stored as JSON"):
        Returns(lambda v: float("nan"))(Item(0, 1, encode("x")))


PY = sys.executable


def command(script: str, **kw: Any) -> CommandHandler:
    return CommandHandler([PY, "-c", script, "{{ item }}"], shell=False, timeout_s=30, **kw)


def test_a_command_outputs_the_file_it_writes_at_wq_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    writes = command(
        "import os, sys; open(os.environ['WQ_OUTPUT'], 'w').write('got ' + sys.argv[1])"
    )
    assert writes(Item(0, 1, encode('caf\u00e9, "quoted"\nline'))) == json.dumps(
        'got caf\u00e9, "quoted"\nline', ensure_ascii=False
    )
    assert command("print('no file')")(Item(0, 1, encode("x"))) is None
    empty = command("import os; open(os.environ['WQ_OUTPUT'], 'w')")
    assert empty(Item(0, 1, encode("x"))) == '""'
    # Each item has a directory of its own, gone once the item is done.
    where = command("import os; print(os.path.dirname(os.environ['WQ_OUTPUT']))")
    where(Item(3, 1, encode("x")))
    directory = capsys.readouterr().out.strip().removeprefix("[item 3] ")
    assert Path(directory).name.startswith("wq-item-")
    assert not Path(directory).exists()


def test_a_command_output_over_the_limit_or_not_text_fails_the_attempt() -> None:
    big = command(
        "import os; open(os.environ['WQ_OUTPUT'], 'w').write('x' * 5000)", max_output_bytes=4096
    )
    with pytest.raises(OutputRefused, match=r"^\$WQ_OUTPUT is 5000 bytes, over the limit of 4096"):
        big(Item(0, 1, encode("x")))
    binary = command("import os; open(os.environ['WQ_OUTPUT'], 'wb').write(b'\\xff\\xfe')")
    with pytest.raises(OutputRefused, match=r"^\$WQ_OUTPUT is not UTF-8 text \(byte 0\)"):
        binary(Item(0, 1, encode("x")))
    link = command("import os; os.symlink('/etc/hostname', os.environ['WQ_OUTPUT'])")
    with pytest.raises(Exception, match="WQ_OUTPUT cannot be read"):
        link(Item(0, 1, encode("x")))


def test_capture_stdout_makes_the_standard_output_the_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = "import sys; print('result of', sys.argv[1]); print('progress', file=sys.stderr)"
    handler = command(script, capture_stdout=True)
    assert handler(Item(4, 1, encode("x"))) == json.dumps("result of x\n")
    assert capsys.readouterr().out == "[item 4] progress\n"  # errors are still logged
    noisy = command("print('y' * 100000)", capture_stdout=True, max_output_bytes=1000)
    with pytest.raises(
        OutputRefused, match="standard output is 100001 bytes, over the limit of 1000"
    ):
        noisy(Item(0, 1, encode("x")))
    failing = command("import sys; print('partial'); sys.exit('broke')", capture_stdout=True)
    with pytest.raises(Exception, match="exited with code 1: broke"):
        failing(Item(0, 1, encode("x")))


def test_command_outputs_through_a_worker(queue: RunQueue) -> None:
    seed(queue, ["a", "bb", "poison"])
    script = (
        "import os, sys\n"
        "if sys.argv[1] == 'poison': sys.exit('cannot digest poison')\n"
        "open(os.environ['WQ_OUTPUT'], 'w').write(str(len(sys.argv[1])))"
    )
    assert run_worker(queue, command(script), max_attempts=1, worker_id="pod-7") == EXIT_DRAINED
    a, bb, poison = (records(queue)[p] for p in range(3))
    assert (a.output, bb.output) == ('"1"', '"2"')
    assert (poison.state, poison.output, poison.worker) == (DEAD, None, "pod-7")
    assert poison.error == "command exited with code 1: cannot digest poison"
    assert a.duration_ms is not None
    assert a.duration_ms < 30_000


def test_records_cost_at_most_32_bytes_per_done_item(queue: RunQueue) -> None:
    """The issue's bar, on a small scale: the ledger of 64k done items without outputs."""
    n = 64 * 1024
    from wq.seed.items_source import ItemRange
    from wq.seed.seeder import seed_range

    seed_range(queue, ItemRange(0, n, 1))
    while items := queue.leases.lease(1000, 30, "t").items:
        queue.leases.complete(
            "t", "worker-with-a-long-name-0123456789", [Finished(i.position, 3) for i in items]
        )
    used = sum(
        int(queue.client.memory_usage(key, samples=0) or 0)
        for key in (queue.keys.ledger, queue.keys.workers)
    )
    assert queue.reading.status().done == n
    assert used / n <= 32
    assert layout.RECORD_WIDTH * layout.RECORDS_PER_FIELD == layout.FIELD_WIDTH


# Retention.


def ttls(queue: RunQueue) -> dict[str, int]:
    """PTTL of each key the run has (-1: no expiry)."""
    return {k: int(queue.client.pttl(k)) for k in queue.keys.named if queue.client.exists(k)}


def test_a_drained_runs_keys_expire_after_the_results_ttl(queue: RunQueue) -> None:
    seed(queue, ["a", "b", "c"])
    assert run_worker(queue, Returns(str.upper), results_ttl_s=1) == EXIT_DRAINED
    kept = ttls(queue)
    assert {queue.keys.meta, queue.keys.items, queue.keys.ledger, queue.keys.outputs} <= set(kept)
    assert all(0 < ttl <= 1000 for ttl in kept.values()), kept
    expires = queue.reading.status().expires_in_s
    assert expires is not None
    assert 0 < expires <= 1
    wait_until("the run's keys to expire", lambda: not ttls(queue), 10)
    assert not queue.reading.status().seeded


def test_results_are_kept_while_a_run_is_worked_on_or_with_ttl_0(queue: RunQueue) -> None:
    seed(queue, ["a", "b"])
    [item] = queue.leases.lease(1, 30, "t").items
    assert not queue.admin.expire_results(60)  # one pending, one in flight
    queue.leases.complete("t", "w", [item.position])
    assert not queue.admin.expire_results(60)  # one pending
    assert run_worker(queue, Returns(str.upper), results_ttl_s=0) == EXIT_DRAINED
    assert set(ttls(queue).values()) == {-1}
    assert queue.reading.status().expires_in_s is None


def test_retry_dead_keeps_a_run_that_was_set_to_expire(queue: RunQueue) -> None:
    seed(queue, ["poison", "fine"])
    held = queue.leases.lease(2, 30, "t").items
    queue.leases.fail("t", held[0].position, "bad", 1)
    queue.leases.complete("t", "w", [held[1].position])
    assert queue.admin.expire_results(3600)
    assert all(ttl > 0 for ttl in ttls(queue).values())
    assert queue.admin.retry_dead() == 1
    assert set(ttls(queue).values()) == {-1}
    assert not queue.admin.expire_results(3600)  # the retried item is pending


def test_completions_pack_each_item_as_the_layout_says() -> None:
    """packed() interleaves two struct calls; it must equal ATTEMPT_FORMAT item by item, with
    durations not known (negative, or too long for 4 bytes) as UNKNOWN_MS."""
    import struct

    from wq.store.completions import Completions

    attempts = [1, 2, 1000, 70_000]
    durations = [0, 12_345, -1, 2**40]
    done = Completions([5, 6, 7, 8], attempts, durations, {})
    expected = b"".join(
        struct.pack(layout.ATTEMPT_FORMAT, a, d)
        for a, d in [(1, 0), (2, 12_345), (1000, layout.UNKNOWN_MS), (0xFFFF, layout.UNKNOWN_MS)]
    )
    assert done.packed() == expected
