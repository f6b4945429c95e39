"""Every benchmark entry point runs, at a tiny size, and prints its figures: `make bench`
(bench/throughput.py), `make chaos` (bench/chaos.py, also on a sharded run), `make shards`
(bench/shards.py, on a local Redis Cluster) and the parts of `make scale`
(bench/scale.py) that need no cluster. They are minutes long at their real sizes and run by
hand, so without this they rot unseen (make chaos read a hash the ledger had replaced).

Each runs as `make` runs it, a subprocess of this interpreter, each with its own redis-server.
Their figures at this size mean nothing: what is checked is that every one is there, and
what does not depend on the machine's speed (no item lost, the ledger exact, the counts)."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Seconds a tiny run may take on a loaded 2-core machine; they take 5-15 s.
DEADLINE_S = 300


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stderr}"
    return result


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.timeout(DEADLINE_S + 30)
def test_throughput(tmp_path: Path) -> None:
    result = run_bench(
        "throughput.py",
        # 4 workers: the count at which the bar on wq's share of the bare loop is judged.
        *("--items", "2000", "--docs-items", "200", "--workers", "4"),
        *("--run-items", "2000", "--benchmark-requests", "2000", "--judged-rounds", "2"),
        *("--out", str(tmp_path)),
    )
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert table in result.stdout
    for figure in (
        "| workers | wq items/s | in-process items/s | isolated / in-process |",
        "| workers | bare loop items/s | its Redis CPU us/item | wq items/s | wq / bare loop "
        "| bare loop + handler process items/s | it / bare loop | wq / it |",
        "Judged at 4 workers, 2 rounds in turn of the three, the median of the rounds' ratios "
        "(min-max): wq ",
        "%) of the bare loop's items/s (bar: >= 80% at 4 workers); the bare loop with a "
        "handler process ",
        "redis-benchmark LPUSH/LPOP ceiling, 4 clients: ",
        "`wq work` to its first lease ",
        "arq 0.28.0's worker to its first job ",
        "wq / arq ",
        "The floor, a process that imports click and redis-py and makes one call: ",
        "above its floor, wq ",
        "Seeding 2,000 items: ",
        "Slowest single Redis call of an operation on a 2,000-item run",
    ):
        assert figure in table, figure
    assert (tmp_path / "throughput.png").stat().st_size > 0
    results = read_json(tmp_path / "results.json")
    # Spawned, then leased (or the job started), by the one Redis clock: each start-up is a
    # positive time, for wq and for arq alike.
    startup = results["startup_s"]
    assert set(startup) == {"wq", "wq_demo", "arq", "floor", "arq_floor"}
    for worker, times in startup.items():
        assert len(times) == 5, worker
        assert all(t > 0 for t in times), (worker, times)
    assert results["startup_wq_over_arq"] > 0
    [row] = results["rows"]
    assert row["workers"] == 4
    for figure in (
        "wq",
        "wq_in_process",
        "isolated_ratio",
        "cpu_us",
        "workers_cpu_us",
        "bytes",
        "bare",
        "bare_cpu_us",
        "of_bare",
        "bare_handler",
        "bare_handler_of_bare",
        "of_bare_handler",
        "docs",
    ):
        assert row[figure] > 0, figure
    judged = results["judged"]
    assert judged["workers"] == 4
    for figure in ("of_bare", "bare_handler_of_bare", "of_bare_handler"):
        assert len(judged[figure]) == 2, figure
        assert all(ratio > 0 for ratio in judged[figure]), figure
    assert set(results["calls_1m"]) == {"seed", "retry-dead", "adopt", "purge"}
    assert all(call["slowest_ms"] > 0 for call in results["calls_1m"].values())


@pytest.mark.timeout(DEADLINE_S + 30)
def test_chaos(tmp_path: Path) -> None:
    # 100 items of at least 20 ms on 2 workers take at least 1 s once the first starts, so a
    # kill every 0.5 s finds one busy: one kill, then the run finishes.
    result = run_bench(
        "chaos.py",
        *("--items", "100", "--workers", "2", "--lease", "1", "--every", "0.5", "--kills", "1"),
        *("--no-bars", "--out", str(tmp_path)),
    )
    for measure in (
        "| kills (SIGKILL, replaced) | 1 |",
        "| items lost (bar: 0) | 0 |",
        "| dead items | 0 |",
        "| ledger (wq status --check) | every position accounted for once: 100 done + 0 dead "
        "= 100 total |",
        "| extra executions per kill (bar: <= 1) | ",
        "| longest kill -> rerun (bar: <= 2 s) | ",
        "| run time | ",
        "| worker exit codes | 0 |",
    ):
        assert measure in result.stdout
    figures = read_json(tmp_path / "chaos.json")
    assert (figures["kills"], figures["items_lost"], figures["dead"]) == (1, 0, 0)


@pytest.mark.timeout(DEADLINE_S + 30)
def test_chaos_on_a_sharded_run(tmp_path: Path) -> None:
    result = run_bench(
        "chaos.py",
        *("--items", "100", "--workers", "2", "--lease", "1", "--every", "0.5", "--kills", "1"),
        *("--shards", "3", "--no-bars", "--out", str(tmp_path)),
    )
    assert "| items lost (bar: 0) | 0 |" in result.stdout
    assert "every position accounted for once: 100 done + 0 dead = 100 total" in result.stdout
    figures = read_json(tmp_path / "chaos.json")
    assert (figures["kills"], figures["items_lost"], figures["dead"]) == (1, 0, 0)


@pytest.mark.timeout(DEADLINE_S + 30)
def test_shards(tmp_path: Path) -> None:
    result = run_bench(
        "shards.py",
        *("--items", "3000", "--big-items", "30000", "--workers", "2", "--no-bars"),
        *("--out", str(tmp_path)),
    )
    table = (tmp_path / "shards.md").read_text(encoding="utf-8")
    assert table in result.stdout
    for figure in ("| 1 | ", "| 3 | ", "3 shards / 1 shard's busiest node: ", "(bar: <= 40%)"):
        assert figure in table, figure
    figures = read_json(tmp_path / "shards.json")
    big = figures["big"]
    # What does not depend on the machine: the big run reads back exactly, over 3 nodes.
    assert (big["report_lines"], big["check_exact"], big["digest_agrees"]) == (30000, True, True)
    assert len(big["bytes_by_node"]) == 3
    assert all(b > 0 for b in big["bytes_by_node"].values())
    assert len(figures["three_shards"]["us_per_item"]) == 3


@pytest.mark.timeout(DEADLINE_S + 30)
def test_scale_without_kind(tmp_path: Path) -> None:
    result = run_bench(
        "scale.py",
        *("--items", "2000", "--sizes", "16", "--memory-items", "2000", "--no-bars"),
        *("--out", str(tmp_path)),
    )
    report = (tmp_path / "scale.md").read_text(encoding="utf-8")
    assert report in result.stdout
    for section in (
        "(a) wq seed --items-url file:// of a file of lines",
        "(b) Redis memory per pending item",
        "(c) range run on kind, the chart's default Redis memory",
    ):
        assert section in report
    figures = read_json(tmp_path / "scale.json")
    assert [(s["mode"], s["items"]) for s in figures["seed"]] == [
        ("all at once", 2000),
        ("progressive", 2000),
    ]
    assert [m["kind"] for m in figures["memory"]] == ["list", "list, 16-112 B mixed", "range"]
    assert figures["kind"]["ok"] == "not run"
