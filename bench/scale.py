"""Scale figures of wq (`make scale`; not part of `make test`):

  (a) seeding 10M items from a 10M-line file through `wq seed --items-url file://...`: wall
      time of the real command (bar: under SEED_BAR_S), items/s, the seeder's peak memory
      and the Redis server's CPU time; all at once, then --progressive (and when its first
      items were visible to workers);
  (b) Redis memory per pending item of a list run against the item's own bytes (bar: at most
      the item's bytes + BYTES_BAR): used_memory after seeding minus before, over the items,
      for several item sizes; and for a range run, which stores no item at all;
  (c) with --kind (as `make scale` runs it): a 10M-item range run on kind at parallelism 8,
      with the chart's default Redis memory: install to Complete, items/s, Redis' peak memory.

Starts a private redis-server on loopback TCP (pods talk TCP), prints a table and writes
scale.json and scale.md into --out.

    python bench/scale.py --out bench/results [--items 10000000] [--sizes 16,64,256] [--kind]
        [--memory-items 1000000] [--no-bars]

(c) needs what `make e2e` sets in the environment (make scale does). It exits 1 when a bar is
missed; with --no-bars the figures are printed, not judged (the smoke test's tiny runs, whose
figures mean nothing).
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wq.store.local_redis import RedisServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WQ = str(Path(sys.executable).parent / "wq")
SEED_BAR_S = 30.0
BYTES_BAR = 8
# Items per run when measuring bytes per item: enough that the hash's own overhead vanishes.
MEMORY_ITEMS = 1_000_000


def write_lines(path: Path, count: int, size: int, spread: int = 0) -> int:
    """`count` distinct lines of `size` bytes each (a zero-padded number), or with `spread`
    of sizes size - spread .. size + spread, evenly mixed; returns the file's bytes."""
    block = 100_000
    with path.open("w", encoding="ascii") as f:
        for start in range(0, count, block):
            end = min(start + block, count)
            f.write(
                "".join(
                    f"{n:0{size + spread}d}"[-(size - spread + (n * 7919) % (2 * spread + 1)) :]
                    + "\n"
                    for n in range(start, end)
                )
            )
    return path.stat().st_size


def redis_cpu_s(client: Any) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def run_wq(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a wq command; (wall seconds, peak RSS in KiB, stderr)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [WQ, *args], env={**os.environ, **env}, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()  # a few lines, until the command exits
    _, status, usage = os.wait4(proc.pid, 0)  # its own peak memory
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"wq {' '.join(args)} failed ({proc.returncode}):\n{stderr}")
    return wall, int(usage.ru_maxrss), stderr


def seed_from_file(
    server: RedisServer, path: Path, items: int, size: int, progressive: bool = False
) -> dict[str, Any]:
    """(a): the real `wq seed --items-url file://` on a file of `items` lines (with
    --progressive: also when the first items were visible to workers, polling the run's total
    every 10 ms)."""
    client = server.connect()
    run = "scale-progressive" if progressive else "scale-seed"
    cpu_before = redis_cpu_s(client)
    env = {"WQ_REDIS_URL": server.url, "WQ_RUN": run, "WQ_LOG_LEVEL": "warning"}
    args = ["seed", "--items-url", path.as_uri(), *(["--progressive"] if progressive else [])]
    started = time.monotonic()
    first_visible: float | None = None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        seeding = pool.submit(run_wq, args, env)
        while not seeding.done():
            if first_visible is None and int(client.hget(f"wq:{{{run}}}:meta", "total") or 0):
                first_visible = time.monotonic() - started
            time.sleep(0.01)
        wall, peak_kib, _ = seeding.result()
    meta = client.hgetall(f"wq:{{{run}}}:meta")
    assert int(meta["total"]) == items, (meta, items)
    assert "open" not in meta, "sealed at the end"
    result = {
        "mode": "progressive" if progressive else "all at once",
        "items": items,
        "item_bytes": size,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "seconds": round(wall, 2),
        "first_items_s": round(first_visible if first_visible is not None else wall, 2),
        "items_per_s": round(items / wall),
        "seeder_peak_rss_mb": round(peak_kib / 1024, 1),
        "redis_cpu_s": round(redis_cpu_s(client) - cpu_before, 2),
        "bar_s": SEED_BAR_S,
        "ok": wall < SEED_BAR_S,
    }
    client.delete(*client.keys(f"wq:{{{run}}}:*"))
    client.close()
    return result


def bytes_per_item(
    server: RedisServer, tmp: Path, size: int, items: int, spread: int = 0
) -> dict[str, Any]:
    """(b): Redis used_memory per pending item of a list run of `items` items of `size` bytes
    on average (the line's bytes; stored as JSON text, 2 quotes more, joined 32 to a hash
    field)."""
    path = tmp / f"size-{size}.txt"
    write_lines(path, items, size, spread)
    client = server.connect()
    run = f"scale-mem-{size}"
    before = int(client.info("memory")["used_memory"])
    env = {"WQ_REDIS_URL": server.url, "WQ_RUN": run, "WQ_LOG_LEVEL": "warning"}
    run_wq(["seed", "--items-url", path.as_uri()], env)
    after = int(client.info("memory")["used_memory"])
    per_item = (after - before) / items
    client.delete(*client.keys(f"wq:{{{run}}}:*"))  # DEL: freed before the next measure
    client.close()
    path.unlink()
    return {
        "kind": "list" if not spread else f"list, {size - spread}-{size + spread} B mixed",
        "item_bytes": size,
        "redis_bytes_per_item": round(per_item, 2),
        "overhead_bytes": round(per_item - size, 2),
        "bar": size + BYTES_BAR,
        "ok": per_item <= size + BYTES_BAR,
    }


def range_bytes_per_item(server: RedisServer, items: int) -> dict[str, Any]:
    client = server.connect()
    before = int(client.info("memory")["used_memory"])
    env = {"WQ_REDIS_URL": server.url, "WQ_RUN": "scale-range", "WQ_LOG_LEVEL": "warning"}
    run_wq(["seed", "--range", f"0:{items}"], env)
    after = int(client.info("memory")["used_memory"])
    client.delete(*client.keys("wq:{scale-range}:*"))
    client.close()
    return {
        "kind": "range",
        "item_bytes": None,
        "redis_bytes_per_item": round((after - before) / items, 4),
        "overhead_bytes": None,
        "bar": BYTES_BAR,
        "ok": True,
    }


def kind_range_run(items: int, parallelism: int, out: Path) -> dict[str, Any]:
    """(c): a range run of `items` items on the kind cluster at `parallelism` workers, by the
    e2e machinery (scripts/e2e.sh: cluster up, images, chart; then down), running
    tests/e2e/test_scale.py, which checks every item done and Redis under its maxmemory and
    writes its figures to a JSON file."""
    figures = out / "scale-kind.json"
    figures.unlink(missing_ok=True)
    env = {
        **os.environ,
        "E2E_MARK": "scale",
        "WQ_SCALE_ITEMS": str(items),
        "WQ_SCALE_PARALLELISM": str(parallelism),
        "WQ_SCALE_OUT": str(figures),
    }
    proc = subprocess.run([str(ROOT / "scripts" / "e2e.sh")], env=env, cwd=ROOT, check=False)
    if proc.returncode != 0:
        return {"items": items, "parallelism": parallelism, "ok": False}
    result: dict[str, Any] = json.loads(figures.read_text(encoding="utf-8"))
    return result


KIND_COLUMNS = ["items", "parallelism", "install_to_complete_s", "install_to_first_lease_s"]
KIND_COLUMNS += ["items_per_s"]
KIND_COLUMNS += ["redis_peak_mb", "redis_maxmemory_mb", "ok"]


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c))) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += [
        "  ".join(str(r.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True))
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--items", type=int, default=10_000_000, help="items seeded in (a)")
    parser.add_argument("--item-bytes", type=int, default=16, help="bytes per line in (a)")
    parser.add_argument("--sizes", default="8,16,64,256", help="item sizes measured in (b)")
    parser.add_argument("--memory-items", type=int, default=MEMORY_ITEMS)
    parser.add_argument("--kind", action="store_true", help="(c) the range run on kind")
    parser.add_argument("--kind-items", type=int, default=10_000_000)
    parser.add_argument("--kind-parallelism", type=int, default=8)
    parser.add_argument("--no-bars", action="store_true", help="report the bars, do not judge")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wq-scale-") as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        try:
            path = Path(tmp) / "items.txt"
            write_lines(path, args.items, args.item_bytes)
            seeding = [
                seed_from_file(server, path, args.items, args.item_bytes, progressive)
                for progressive in (False, True)
            ]
            path.unlink()
            memory = [
                bytes_per_item(server, Path(tmp), int(size), args.memory_items)
                for size in args.sizes.split(",")
            ]
            memory.append(bytes_per_item(server, Path(tmp), 64, args.memory_items, spread=48))
            memory.append(range_bytes_per_item(server, args.memory_items))
        finally:
            server.stop()
    if args.kind:
        kind = kind_range_run(args.kind_items, args.kind_parallelism, args.out.resolve())
    else:
        kind = {"items": args.kind_items, "parallelism": args.kind_parallelism, "ok": "not run"}
    seed_cols = ["mode", "items", "item_bytes", "file_mb", "seconds", "first_items_s"]
    seed_cols += ["items_per_s"]
    seed_cols += ["seeder_peak_rss_mb", "redis_cpu_s", "bar_s", "ok"]
    mem_cols = ["kind", "item_bytes", "redis_bytes_per_item", "overhead_bytes", "bar", "ok"]
    report = "\n\n".join(
        [
            "(a) wq seed --items-url file:// of a file of lines\n" + table(seeding, seed_cols),
            "(b) Redis memory per pending item\n" + table(memory, mem_cols),
            "(c) range run on kind, the chart's default Redis memory\n"
            + table([kind], KIND_COLUMNS),
        ]
    )
    print(report)
    (args.out / "scale.md").write_text(report + "\n", encoding="utf-8")
    results = {"seed": seeding, "memory": memory, "kind": kind}
    (args.out / "scale.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.no_bars:
        return
    if not all(r["ok"] for r in seeding + memory) or kind["ok"] is False:
        sys.exit(1)


if __name__ == "__main__":
    main()
