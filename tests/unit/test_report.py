"""`wq report`, `wq digest` and `wq status --check` through the real entry point: reports that
real parsers read back, digests that match the seeded run, and memory that stays flat."""

import csv
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.conftest import make_queue
from wq.base.item import encode
from wq.seed.items_source import ItemRange
from wq.seed.seeder import seed_items, seed_range
from wq.store.completions import Completions, Finished
from wq.store.leases import FailOutcome
from wq.store.queue import RunQueue

# Values that trip up a careless CSV or JSON writer.
TRICKY: list[Any] = [
    "plain",
    "comma, separated",
    'a "quoted" word',
    "two\nlines",
    "caf\u00e9 \u2713 \u6f22\u5b57",
    {"src": "a.png", "sizes": [1, 2.5], "ok": True},
    42,
    None,
    "",
    "=1+1",
    "@SUM(A1:A2)",
    "+x",
    "-y",
    "\tcmd",
    -5,
]


def env_of(redis_url: str, run_id: str) -> dict[str, str]:
    return {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}


def output_for(value: Any) -> Any:
    """The output each tricky item gets: the odd ones a string, the even ones a structure."""
    return {"seen": value, "list": [value, None]} if isinstance(value, str) else f"got {value!r}"


def prepare_run(queue: RunQueue) -> dict[int, dict[str, Any]]:
    """TRICKY done with outputs, then 'poison' dead, 'waiting' pending and 'held' in flight.
    Returns what each position's JSON line must hold (times aside)."""
    values = [*TRICKY, "poison", "waiting", "held"]
    seed_items(queue, [encode(v) for v in values])
    finished = queue.leases.lease(len(values), 30, "t").items[: len(TRICKY)]
    done = Completions(
        positions=[i.position for i in finished],
        attempts=[i.attempt for i in finished],
        durations_ms=[1500 + i.position for i in finished],
        outputs={i.position: encode(output_for(i.value)) for i in finished},
    )
    assert queue.leases.complete("t", "pod-0", done) == []
    poison, waiting = len(TRICKY), len(TRICKY) + 1
    poisoned = queue.leases.fail("t", poison, 'no, "never"', 1, worker="pod-1", duration_ms=2)
    assert poisoned is FailOutcome.DEAD
    assert queue.leases.release("t", [waiting]) == 1
    expected: dict[int, dict[str, Any]] = {}
    for p, value in enumerate(values):
        finished = p < len(TRICKY)
        expected[p] = {
            "position": p,
            "state": "done" if finished else ["dead", "pending", "in_flight"][p - len(TRICKY)],
            "attempts": 1 if p <= poison else 0,
            "duration_s": (1500 + p) / 1000 if finished else 0.002 if p == poison else None,
            "worker": "pod-0" if finished else "pod-1" if p == poison else None,
            "error": 'no, "never"' if p == poison else None,
            "item": value,
            "output": output_for(value) if finished else None,
        }
    return expected


def test_report_jsonl_and_csv_read_back_through_real_parsers(
    queue: RunQueue, redis_url: str, tmp_path: Path
) -> None:
    expected = prepare_run(queue)
    env = env_of(redis_url, queue.run)

    jsonl = wq("report", env=env)
    assert jsonl.returncode == 0, jsonl.stderr
    lines = jsonl.stdout.splitlines()
    assert len(lines) == len(expected)  # one line per item: no raw newline inside a record
    got = [json.loads(line) for line in lines]
    for record in got:
        stamp = record.pop("finished_at")
        if record["state"] in ("done", "dead"):
            assert stamp.endswith("Z")
            assert stamp[:2] == "20"
        else:
            assert stamp is None
    assert got == [expected[p] for p in sorted(expected)]

    table = wq("report", "--format", "csv", env=env)
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout, newline="")))
    assert [r["position"] for r in rows] == [str(p) for p in sorted(expected)]
    for row in rows:
        want = expected[int(row["position"])]
        assert row["state"] == want["state"]
        assert row["item"] == text_cell(want["item"])
        assert row["output"] == ("" if want["output"] is None else text_cell(want["output"]))
        assert row["error"] == (want["error"] or "")
        assert row["worker"] == (want["worker"] or "")
        assert row["duration_s"] == ("" if want["duration_s"] is None else str(want["duration_s"]))

    # -o FILE holds what stdout would; --state filters, in seed order.
    target = tmp_path / "report.jsonl"
    written = wq("report", "-o", str(target), env=env)
    assert written.returncode == 0, written.stderr
    assert target.read_text(encoding="utf-8") == jsonl.stdout
    assert f"wrote {len(expected)} record(s)" in written.stderr
    assert list(tmp_path.iterdir()) == [target]  # no part file left beside it
    some = wq("report", "--state", "pending", "--state", "dead", env=env)
    assert [json.loads(line)["state"] for line in some.stdout.splitlines()] == ["dead", "pending"]


def text_cell(value: Any) -> str:
    """A CSV cell as the report documents it: strings as they are but for a ' before a
    formula's first character, others as compact JSON."""
    if not isinstance(value, str):
        return encode(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def test_csv_cells_never_start_a_formula(queue: RunQueue, redis_url: str) -> None:
    """Items are untrusted: a spreadsheet opening the CSV report must not run one as a formula,
    whatever column it lands in (item, output, error)."""
    prepare_run(queue)
    table = wq("report", "--format", "csv", env=env_of(redis_url, queue.run))
    rows = list(csv.DictReader(io.StringIO(table.stdout, newline="")))
    cells = [row[c] for row in rows for c in ("item", "output", "error", "worker")]
    for guarded in ("'=1+1", "'@SUM(A1:A2)", "'+x", "'-y", "'\tcmd"):
        assert guarded in cells
    assert "-5" in cells  # a number stays a number
    risky = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or c.startswith("-y")]
    assert risky == []


def test_wq_dead_is_the_dead_part_of_the_report(queue: RunQueue, redis_url: str) -> None:
    prepare_run(queue)
    env = env_of(redis_url, queue.run)
    listed = wq("dead", "--json", env=env)
    assert json.loads(listed.stdout) == {
        "position": len(TRICKY),
        "item": "poison",
        "error": 'no, "never"',
    }
    assert wq("dead", env=env).stdout == f'{len(TRICKY)}\t"poison"\tno, "never"\n'


def test_report_of_a_run_never_seeded_is_an_error(redis_url: str, run_id: str) -> None:
    result = wq("report", env=env_of(redis_url, run_id))
    assert result.returncode == 2
    assert result.stderr == f"wq: error: run {run_id!r} is not seeded: it has no items to report\n"


def test_a_report_read_until_the_reader_stops_ends_quietly(queue: RunQueue, redis_url: str) -> None:
    seed_range(queue, ItemRange(0, 50_000, 1))
    proc = subprocess.Popen(
        wq_argv("report"),
        env=wq_env(env_of(redis_url, queue.run)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert json.loads(proc.stdout.readline())["position"] == 0
    proc.stdout.close()  # as `wq report | head -1` does
    assert proc.wait(60) == 1  # click's way: quietly, exit 1
    assert proc.stderr.read() == ""
    proc.stderr.close()


def fill(queue: RunQueue, n: int) -> None:
    """A range run of n items, every one done (straight through the queue: fast)."""
    seed_range(queue, ItemRange(0, n, 1))
    while items := queue.leases.lease(1000, 60, "t").items:
        positions = [i.position for i in items]
        done = Completions(positions, [1] * len(items), [1] * len(items), {})
        assert queue.leases.complete("t", "w", done) == []


def report_peak_rss_kib(redis_url: str, run: str, out: Path) -> int:
    """Peak resident memory of one `wq report -o` process (its own, from wait4)."""
    proc = subprocess.Popen(
        wq_argv("report", "-o", str(out)),
        env=wq_env(env_of(redis_url, run)),
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    assert proc.returncode == 0
    return int(usage.ru_maxrss)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_report_of_a_million_items_streams_in_bounded_memory(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    peaks = {}
    for n in (10_000, 1_000_000):
        queue = make_queue(redis_url, f"{run_id}-{n}", budget=30)
        fill(queue, n)
        out = tmp_path / f"{n}.jsonl"
        peaks[n] = report_peak_rss_kib(redis_url, queue.run, out)
        with out.open(encoding="utf-8") as f:
            count = 0
            for count, line in enumerate(f, start=1):  # noqa: B007
                pass
            assert count == n
            assert json.loads(line)["position"] == n - 1
        out.unlink()
        queue.admin.purge()
        queue.close()
    # A hundred times the items, the same memory (give or take allocator noise).
    assert peaks[1_000_000] - peaks[10_000] < 8 * 1024, peaks


# Digests.


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("items.txt", "apple\nbanana split\n\u00e9clair\n"),
        ("items.json", '[{"src": "a.png"}, 7, "x", null]'),
        ("items.yaml", "- {src: a.png}\n- 7\n- 'x'\n"),
    ],
)
def test_wq_digest_of_an_items_file_is_the_seeded_runs(
    tmp_path: Path, redis_url: str, run_id: str, name: str, text: str
) -> None:
    items = tmp_path / name
    items.write_text(text, encoding="utf-8")
    env = env_of(redis_url, run_id)
    offline = wq("digest", "--items-file", str(items))
    assert offline.returncode == 0, offline.stderr
    assert wq("seed", "--items-file", str(items), env=env).returncode == 0
    status = json.loads(wq("status", "--json", env=env).stdout)
    assert offline.stdout == status["digest"] + "\n"
    other = tmp_path / f"other-{name}"
    other.write_text(text.replace("7", "8").replace("apple", "apples"), encoding="utf-8")
    assert wq("digest", "--items-file", str(other)).stdout != offline.stdout


def test_wq_digest_of_a_range_items_or_an_adopted_list(
    redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    env = env_of(redis_url, run_id)
    ranged = env_of(redis_url, run_id + "-range")
    assert wq("seed", "--range", "5:1000:7", env=ranged).returncode == 0
    assert wq("digest", "--range", "5:1000:7").stdout == digest_of_run(ranged)
    assert wq("digest", "--range", "5:1001:7").stdout == digest_of_run(ranged)  # same items
    listed = f"{run_id}-list"
    client.rpush(listed, "a", "b c", "d")
    assert wq("seed", "--adopt-list", listed, env=env).returncode == 0
    assert wq("digest", "a", "b c", "d").stdout == digest_of_run(env)


def digest_of_run(env: dict[str, str]) -> str:
    return str(json.loads(wq("status", "--json", env=env).stdout)["digest"]) + "\n"


# status --check.


def test_status_check_accounts_for_every_position_and_prints_the_digest(
    queue: RunQueue, redis_url: str
) -> None:
    env = env_of(redis_url, queue.run)
    seed_items(queue, [encode(v) for v in ["a", "b", "c"]])
    waiting = wq("status", "--check", env=env)
    assert waiting.returncode == 1
    assert "check      NOT accounted for: the run is waiting for workers (3 pending" in (
        waiting.stdout
    )
    held = queue.leases.lease(3, 30, "t").items
    assert queue.leases.complete("t", "w", [Finished(i.position) for i in held]) == []
    checked = wq("status", "--check", env=env)
    assert checked.returncode == 0, checked.stdout
    digest = queue.reading.status().digest
    assert f"digest     {digest}" in checked.stdout
    assert "check      every position accounted for once: 3 done + 0 dead = 3 total" in (
        checked.stdout
    )
    as_json = json.loads(wq("status", "--check", "--json", env=env).stdout)
    assert as_json["check"] == {
        "exact": True,
        "summary": "every position accounted for once: 3 done + 0 dead = 3 total",
    }
    # A position recorded twice (a bug, or a hand in Redis) fails the check and is named.
    queue.client.hset(queue.keys.dead, "1", "forged")
    forged = wq("status", "--check", env=env)
    assert forged.returncode == 1
    assert "1 position(s) in two states: 1 (done and dead)" in forged.stdout


def test_a_run_seeded_by_another_storage_format_is_refused_not_miscounted(
    queue: RunQueue, client: "redis.Redis", redis_url: str
) -> None:
    """A run seeded by wq 0.1 (a `done` hash, no ledger, no format field) must not be worked,
    reported or counted by this wq as if nothing were done: exit 2 naming what to do. Purge
    still removes it."""
    seed_items(queue, [encode(v) for v in ("a", "b", "c")])
    client.hdel(queue.keys.meta, "format")
    client.hset(f"wq:{{{queue.run}}}:done", mapping={"0": "old-worker-1"})
    env = env_of(redis_url, queue.run)
    for argv in (
        ("work", "--redis-wait", "1"),
        ("status",),
        ("report",),
        ("seed", "a", "b", "c"),
    ):
        result = wq(*argv, env=env)
        assert result.returncode == 2, (argv, result)
        assert "seeded by another wq version (storage format 1" in result.stderr, argv
        assert "Traceback" not in result.stderr
    assert client.hget(queue.keys.meta, "cursor") == "0", "no worker leased an item"
    purged = wq("purge", "--yes", env=env)
    assert purged.returncode == 0, purged.stderr
    assert client.keys(f"wq:{{{queue.run}}}:*") == []
