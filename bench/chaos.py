"""`make chaos`: a long run under repeated SIGKILLs, and what it cost.

20,000 items of 20-50 ms, 6 worker processes, 2 s leases; every 2 s for 60 s one busy worker
is killed with SIGKILL and replaced (as the Job controller would). Then the run finishes and
this prints:
  - items lost (must be 0): neither done nor dead, by the run's ledger (as `wq status --check`
    counts them, which must also find every position in one state only);
  - extra executions per kill (bar: <= concurrency, only the items in progress);
  - the longest time from a kill to the item it was running starting again (bar: <= 2 x lease).
It exits 1 when an item is lost or dead, or an interrupted item never ran again, or a bar is
missed; with --no-bars the two bars are reported, not judged (the smoke test's tiny runs on a
busy machine, whose timings mean nothing).

    python bench/chaos.py [--items 20000] [--workers 6] [--lease 2] [--every 2] [--for 60]
                          [--kills N] [--shards N] [--no-bars] [--out DIR]

With --shards N the run is sharded (`wq seed --shards`): workers move between its shards, and
a kill may leave leases on any of them.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from wq.base.options import ConnectionConfig
from wq.read.ledger import account
from wq.seed.items_source import ItemRange
from wq.seed.seeder import seed_range
from wq.seed.sharding import seed_range_sharded
from wq.store.local_redis import RedisServer
from wq.store.queue import open_queue

HERE = Path(__file__).resolve().parent
RUN = "chaos"


def start_worker(url: str, logs: Path, lease: float) -> "subprocess.Popen[bytes]":
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE),
        "WQ_REDIS_URL": url,
        "WQ_RUN": RUN,
        "WQ_HANDLER": "python",
        "WQ_PYTHON": "chaos_handler:work",
        "WQ_LEASE": str(lease),
        "WQ_MAX_ATTEMPTS": "10",
        "WQ_POLL": "0.2",
        "WQ_LOG_LEVEL": "error",
        "WQ_CHAOS_DIR": str(logs),
    }
    argv = [str(Path(sys.executable).parent / "wq"), "work"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)


def read_logs(logs: Path) -> dict[int, list[tuple[str, str, float]]]:
    """pid -> [(event, item, time)] in the order written."""
    out: dict[int, list[tuple[str, str, float]]] = {}
    for f in logs.glob("*.log"):
        rows = []
        for line in f.read_text().splitlines():
            parts = line.split(" ")
            if len(parts) == 3:  # a line cut by the kill is not an event
                rows.append((parts[0], parts[1], float(parts[2])))
        out[int(f.stem)] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between kills")
    parser.add_argument("--for", dest="duration", type=float, default=60.0)
    parser.add_argument("--kills", type=int, default=0, help="kill at most this many (0: no limit)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--shards", type=int, default=1, help="shards of the run (wq seed)")
    parser.add_argument("--no-bars", action="store_true", help="report the bars, do not judge")
    args = parser.parse_args()
    rng = random.Random(20261126)
    with tempfile.TemporaryDirectory(prefix="wq-chaos-") as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        logs = Path(tmp) / "logs"
        logs.mkdir()
        queue = open_queue(ConnectionConfig(redis_url=server.url, run_id=RUN, redis_wait=30))
        if args.shards > 1:
            seed_range_sharded(queue, ItemRange(0, args.items, 1), args.shards)
        else:
            seed_range(queue, ItemRange(0, args.items, 1))
        workers = [start_worker(server.url, logs, args.lease) for _ in range(args.workers)]
        kills: list[tuple[int, float]] = []  # (pid, time of the kill)
        started = time.monotonic()
        try:
            while (
                time.monotonic() - started < args.duration
                and not queue.reading.status().drained
                and not (args.kills and len(kills) >= args.kills)
            ):
                time.sleep(args.every)  # the chaos schedule itself
                busy = [p for p in workers if (logs / f"{p.pid}.log").exists()]
                if not busy:
                    continue
                victim = rng.choice(busy)
                victim.send_signal(signal.SIGKILL)
                kills.append((victim.pid, time.time()))
                victim.wait()
                workers.remove(victim)
                workers.append(start_worker(server.url, logs, args.lease))
                print(f"kill {len(kills)}: worker {victim.pid}", file=sys.stderr)
            codes = [p.wait(600) for p in workers]
            finished = time.monotonic() - started
            status = queue.reading.status()
            ledger = account(queue)
        finally:
            for p in workers:
                if p.poll() is None:
                    p.kill()
            queue.close()
            server.stop()
        events = read_logs(logs)
    starts = Counter(item for rows in events.values() for e, item, _ in rows if e == "start")
    extra = sum(n - 1 for n in starts.values())
    first_start_after: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for pid, rows in events.items():
        for e, item, t in rows:
            if e == "start":
                first_start_after[item].append((t, pid))
    recoveries = []
    for pid, killed_at in kills:
        ended = {item for e, item, _ in events.get(pid, []) if e == "end"}
        running = [item for e, item, _ in events.get(pid, []) if e == "start" and item not in ended]
        for item in running:
            again = [t for t, other in first_start_after[item] if other != pid and t >= killed_at]
            recoveries.append(min(again) - killed_at if again else float("inf"))
    lost = args.items - ledger.done - ledger.dead  # neither done nor dead-lettered
    result = {
        "items": args.items,
        "workers": args.workers,
        "lease_s": args.lease,
        "kills": len(kills),
        "items_lost": lost,
        "dead": status.dead,
        "ledger": ledger.summary(),
        "extra_executions": extra,
        "extra_executions_per_kill": extra / len(kills) if kills else 0.0,
        "interrupted_items": len(recoveries),
        "longest_kill_to_rerun_s": max(recoveries) if recoveries else 0.0,
        "run_seconds": finished,
        "worker_exit_codes": sorted(set(codes)),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "chaos.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("kills (SIGKILL, replaced)", f"{len(kills)}"),
        ("items lost (bar: 0)", f"{lost}"),
        ("dead items", f"{status.dead}"),
        ("ledger (wq status --check)", ledger.summary()),
        ("extra executions per kill (bar: <= 1)", f"{result['extra_executions_per_kill']:.2f}"),
        (
            f"longest kill -> rerun (bar: <= {2 * args.lease:g} s)",
            f"{result['longest_kill_to_rerun_s']:.2f} s",
        ),
        ("run time", f"{finished:.1f} s"),
        ("worker exit codes", ", ".join(map(str, result["worker_exit_codes"]))),
    ]
    print("| measure | value |\n|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    correct = lost == 0 and status.dead == 0 and ledger.exact
    correct = correct and result["longest_kill_to_rerun_s"] != float("inf")
    bars = result["longest_kill_to_rerun_s"] <= 2 * args.lease
    bars = bars and result["extra_executions_per_kill"] <= 1
    sys.exit(0 if correct and (bars or args.no_bars) else 1)


if __name__ == "__main__":
    main()
