"""Figures of sharded runs (`make shards`; not part of `make test`), on a local Redis Cluster of
three `redis-server --cluster-enabled yes` nodes started for the purpose:

  (a) Redis CPU per item on each node: the same range run of --items, worked by --workers
      `wq work` processes, seeded in one shard and then in three (one a node): bar, each
      node's CPU per item in the 3-shard run at most BAR_CPU_RATIO of the 1-shard run's node,
      i.e. at least 1 / BAR_CPU_RATIO (2.5) times the items per Redis CPU-second of any node;
  (b) a big range run (--big-items, 30M) in three shards: the bytes of each node's keys of
      the run (MEMORY USAGE) once drained, bar at most BAR_NODE_SHARE of them on any node; and
      `wq report`'s lines, `wq status --check` and `wq digest` agree on it.

Prints a table and writes shards.json and shards.md into --out.

    python bench/shards.py --out bench/results [--items 1000000] [--big-items 30000000]
        [--workers 4] [--no-bars]

It exits 1 when a bar is missed; with --no-bars the figures are printed, not judged (the
smoke test's tiny runs, whose figures mean nothing).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.cluster import RedisCluster

from wq.store.keys import RunKeys
from wq.store.local_redis import LocalCluster

HERE = Path(__file__).resolve().parent
WQ = str(Path(sys.executable).parent / "wq")
SHARDS = 3
BAR_CPU_RATIO = 0.4
BAR_NODE_SHARE = 0.4
WORKER = ("--handler", "python", "--python", "noop:noop", "--poll", "0.01")


def env_of(cluster: LocalCluster, run: str) -> dict[str, str]:
    return {
        **os.environ,
        "WQ_REDIS_URL": cluster.url,
        "WQ_REDIS_CLUSTER": "true",
        "WQ_RUN": run,
        "WQ_LOG_LEVEL": "warning",
        "PYTHONPATH": str(HERE),  # the noop handler
    }


def wq(cluster: LocalCluster, run: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WQ, *args], env=env_of(cluster, run), capture_output=True, text=True, check=True
    )


def node_cpu_s(cluster: LocalCluster) -> dict[int, float]:
    """CPU time each node has used so far, user + system, by port."""
    cpu = {}
    for node in cluster.nodes:
        client = node.connect()
        try:
            info = client.info("cpu")
            cpu[node.port] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        finally:
            client.close()
    return cpu


def work(cluster: LocalCluster, run: str, workers: int) -> float:
    """Drain the run with `workers` processes; seconds it took."""
    started = time.monotonic()
    env = env_of(cluster, run)
    procs = [subprocess.Popen([WQ, "work", *WORKER], env=env) for _ in range(workers)]
    for proc in procs:
        if proc.wait(timeout=3600) != 0:
            raise RuntimeError(f"wq work exited with {proc.returncode}")
    return time.monotonic() - started


def cpu_per_item(cluster: LocalCluster, items: int, workers: int, shards: int) -> dict[str, Any]:
    """(a) for one shard count: each node's Redis CPU microseconds per item, and items/s."""
    run = f"cpu-{shards}"
    wq(cluster, run, "seed", "--range", f"0:{items}", "--shards", str(shards))
    before = node_cpu_s(cluster)
    seconds = work(cluster, run, workers)
    after = node_cpu_s(cluster)
    wq(cluster, run, "purge", "--yes")
    per_node = {port: (after[port] - before[port]) / items * 1e6 for port in before}
    return {"shards": shards, "us_per_item": per_node, "items_per_s": items / seconds}


def node_bytes(cluster: LocalCluster, run: str) -> dict[int, int]:
    """Bytes of the run's keys on each node (its shards', its directory's), by port."""
    client = RedisCluster.from_url(cluster.url)
    try:
        directory = RunKeys(run)
        runs = client.hget(directory.meta, "shard_runs").decode().split(",")
        held = {node.port: 0 for node in cluster.nodes}
        for name in [run, *runs]:
            port = client.get_node_from_key(RunKeys(name).meta).port
            for key in RunKeys(name).named:
                held[port] += int(client.memory_usage(key, samples=0) or 0)
        return held
    finally:
        client.close()


def big_run(cluster: LocalCluster, items: int, workers: int) -> dict[str, Any]:
    """(b): a big range run in SHARDS shards, worked, then measured and read back."""
    run = "big"
    wq(cluster, run, "seed", "--range", f"0:{items}", "--shards", str(SHARDS))
    seconds = work(cluster, run, workers)
    held = node_bytes(cluster, run)
    checked = wq(cluster, run, "status", "--check", "--json")
    check = json.loads(checked.stdout)
    started = time.monotonic()
    report = subprocess.run(
        f"{WQ} report | wc -l",
        shell=True,
        env=env_of(cluster, run),
        capture_output=True,
        text=True,
        check=True,
    )
    report_s = time.monotonic() - started
    digest = wq(cluster, run, "digest", "--range", f"0:{items}").stdout.strip()
    wq(cluster, run, "purge", "--yes")
    return {
        "items": items,
        "items_per_s": items / seconds,
        "bytes_by_node": held,
        "max_node_share": max(held.values()) / sum(held.values()),
        "report_lines": int(report.stdout.strip()),
        "report_s": report_s,
        "check_exact": check["check"]["exact"],
        "check_summary": check["check"]["summary"],
        "digest_agrees": check["digest"] == digest,
    }


def table(one: dict[str, Any], three: dict[str, Any], big: dict[str, Any], workers: int) -> str:
    busiest = max(one["us_per_item"].values())
    ratios = {p: us / busiest for p, us in three["us_per_item"].items()}
    gain = busiest / max(three["us_per_item"].values())
    lines = [
        f"Local Redis Cluster of {SHARDS} nodes, {workers} workers, range runs.",
        "",
        "| shards | items/s | Redis CPU us/item by node | busiest node |",
        "|---:|---:|---|---:|",
    ]
    for row in (one, three):
        nodes = ", ".join(f"{us:.2f}" for us in row["us_per_item"].values())
        lines.append(
            f"| {row['shards']} | {row['items_per_s']:,.0f} | {nodes} | "
            f"{max(row['us_per_item'].values()):.2f} |"
        )
    lines += [
        "",
        f"Each node's Redis CPU per item, 3 shards / 1 shard's busiest node: "
        f"{', '.join(f'{r:.2f}' for r in ratios.values())} (bar: <= {BAR_CPU_RATIO}); "
        f"items per Redis CPU-second of the busiest node: {gain:.2f}x.",
        "",
        f"A {big['items']:,}-item run in {SHARDS} shards: {big['items_per_s']:,.0f} items/s; "
        f"bytes by node {', '.join(f'{b:,}' for b in big['bytes_by_node'].values())}, "
        f"the most on one node {big['max_node_share']:.1%} (bar: <= {BAR_NODE_SHARE:.0%}); "
        f"`wq report` {big['report_lines']:,} lines in {big['report_s']:.1f} s; "
        f"`wq status --check`: {big['check_summary']}; digest agrees: {big['digest_agrees']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--big-items", type=int, default=30_000_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-bars", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp))
        try:
            cluster.start()
            one = cpu_per_item(cluster, args.items, args.workers, 1)
            three = cpu_per_item(cluster, args.items, args.workers, SHARDS)
            big = big_run(cluster, args.big_items, args.workers)
        finally:
            cluster.stop()
    text = table(one, three, big, args.workers)
    print(text)
    (args.out / "shards.md").write_text(text, encoding="utf-8")
    results = {"one_shard": one, "three_shards": three, "big": big, "workers": args.workers}
    (args.out / "shards.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    busiest = max(one["us_per_item"].values())
    exact = big["check_exact"] and big["digest_agrees"] and big["report_lines"] == big["items"]
    if not exact:
        sys.exit("the big sharded run does not read back exactly: " + big["check_summary"])
    missed = [
        f"node CPU ratio {us / busiest:.2f} > {BAR_CPU_RATIO}"
        for us in three["us_per_item"].values()
        if us / busiest > BAR_CPU_RATIO
    ]
    if big["max_node_share"] > BAR_NODE_SHARE:
        missed.append(f"node share {big['max_node_share']:.1%} > {BAR_NODE_SHARE:.0%}")
    if missed and not args.no_bars:
        sys.exit("bars missed: " + "; ".join(missed))


if __name__ == "__main__":
    main()
