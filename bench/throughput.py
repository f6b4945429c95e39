"""Per-item queue overhead of wq, against the Kubernetes docs' client and Redis's own ceiling.

Starts a private redis-server on loopback, then for each worker count W:
  - wq: seeds N no-op items, runs W `wq work` processes, measures items/s from the first
    lease to drained, with the python handler isolated in a process of its own (the default)
    and, paired with it, in the worker's own process (--python-isolation none); the Redis
    server's CPU time per item (INFO cpu, user + system, over the
    whole run), the workers' CPU time per item (their rusage, start-up included) and the
    bytes per item the drained run's keys hold (MEMORY USAGE of every key of the run: a
    range run stores no items, so that is its ledger of done items). On a busy machine CPU
    time per item varies much less than items/s, which also counts waiting for a core;
  - bare: the limit wq is measured against, a bare lease/complete loop in batches of 1,000
    through wq's store API (bare_loop.py), W processes on a range run of the same count and
    nothing else: items/s from the first lease to drained, and Redis CPU per item; wq's
    items/s as a share of it is the issue's bar (>= 80% at 4 workers); and the same loop with
    the least a handler isolated in a process needs (bare_loop.py --handler-process), what
    isolation costs any worker; then the three again at 4 workers, --judged-rounds times in
    turn, for the bar's ratios as medians of rounds (one run's items/s swings by a third);
  - docs: fills a plain list with the same count, runs W processes of the docs' client
    protocol (docs_client.py), measures items/s from the first pop to empty;
and reports the start-up of `wq work` (spawn to first lease) beside that of arq's worker
(arq_worker.py, in arq's own venv: `make venv-arq`) on the same machine, with the floor of
each environment (a process that imports click and redis-py and makes one call),
redis-benchmark's ceiling on the same server (one request per round trip, and pipelined),
the time to seed 1M items (--run-items), and the slowest single Redis call of each operation
that handles a whole run of as many (seed, retry-dead, adopt, purge): Redis serves one call
at a time, so that is how long every worker waits behind it. Writes a table (results.md,
results.json) and a plot (throughput.png) into --out.

    python bench/throughput.py --out bench/results [--items 1000000] [--workers 1,2,4,8]
        [--docs-items 20000] [--run-items 1000000] [--benchmark-requests 200000]
        [--arq-venv .venv-arq]
    python bench/throughput.py --wq-only --workers 4 --repeat 3   # A/B of wq alone
    python bench/throughput.py --wq-only --isolation both --repeat 6   # isolated vs in-process

The workers import `wq` like this script does, so PYTHONPATH=OTHER/src runs another version
of the package for an A/B comparison on the same machine.
"""

import argparse
import compileall
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wq
from wq.base.item import encode
from wq.base.options import ConnectionConfig
from wq.seed.seeder import adopt_list, seed_items
from wq.store import layout
from wq.store.keys import RunKeys
from wq.store.local_redis import RedisServer
from wq.store.queue import open_queue
from wq.store.scripts import script_names, script_text

HERE = Path(__file__).resolve().parent
WQ = str(Path(sys.executable).parent / "wq")
# arq's venv (make venv-arq): arq pins a redis-py older than wq's, so it cannot share ours.
ARQ_VENV = HERE.parent / ".venv-arq"
ARQ_REQUIREMENTS = HERE / "requirements-arq.txt"
# No single Redis call of an operation on a whole run may take longer than this.
CALL_BAR_MS = 50.0


class Server(RedisServer):
    """The benchmark's redis-server on loopback TCP (pods talk TCP, so the benchmark does)."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.start()
        self.client = self.connect()

    def now(self) -> float:
        seconds, micros = self.client.time()
        return seconds + micros / 1e6

    def stop(self, kill: bool = False) -> None:
        self.client.close()
        super().stop(kill)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark run did not finish in time")
        time.sleep(step)


def redis_cpu_s(server: Server) -> float:
    """CPU time the Redis server has used so far, user + system."""
    cpu = server.client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def wq_env(server: Server, run: str) -> dict[str, str]:
    """The environment of a `wq` command on the run: bench/ on the path for the handler (and
    the bare loop), after whatever PYTHONPATH names (another version of wq, for an A/B)."""
    pythonpath = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "WQ_REDIS_URL": server.url,
        "WQ_RUN": run,
        "PYTHONPATH": pythonpath,
        "WQ_LOG_LEVEL": "warning",
    }


def drain(server: Server, items: int, run: str, argv: list[str], workers: int) -> dict[str, float]:
    """Seeds a range run of `items`, starts `workers` processes of `argv` on it and waits until
    it is drained: items/s from the first lease to drained, and the Redis server's and the
    processes' CPU microseconds per item. The run's keys are left for the caller to read."""
    env = wq_env(server, run)
    subprocess.run([WQ, "seed", "--range", f"0:{items}"], env=env, check=True)
    queue = open_queue(ConnectionConfig(redis_url=server.url, run_id=run, redis_wait=10))
    keys = RunKeys(run)
    cpu_before = redis_cpu_s(server)
    procs = [subprocess.Popen(argv, env=env) for _ in range(workers)]
    wait_until(lambda: server.client.hexists(keys.meta, layout.FIRST_LEASE_MS), 60)
    wait_until(lambda: queue.reading.status().done >= items, 600, step=0.02)
    finished = server.now()
    first = int(server.client.hget(keys.meta, layout.FIRST_LEASE_MS) or 0) / 1000
    cpu_s = redis_cpu_s(server) - cpu_before
    procs_cpu_s = 0.0
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)  # its own CPU time, unlike Popen.wait
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} exited with {p.returncode}")
        procs_cpu_s += usage.ru_utime + usage.ru_stime
    queue.close()
    return {
        "rate": items / (finished - first),
        "cpu_us": cpu_s / items * 1e6,
        "workers_cpu_us": procs_cpu_s / items * 1e6,
    }


def run_wq(
    server: Server, items: int, workers: int, tag: str, isolation: str = "process"
) -> dict[str, float]:
    """items/s, Redis CPU microseconds per item, and bytes per item of the drained run, with
    the python handler isolated (`process`) or in the worker's process (`none`)."""
    run = f"bench-{tag}"
    argv = [
        *(WQ, "work", "--handler", "python", "--python", "noop:noop", "--poll", "0.01"),
        *("--python-isolation", isolation),
    ]
    figures = drain(server, items, run, argv, workers)
    names = server.client.keys(RunKeys(run).pattern)
    held = sum(int(server.client.memory_usage(k, samples=0) or 0) for k in names)
    server.client.delete(*names)
    return {**figures, "bytes": held / items}


def run_bare(
    server: Server, items: int, workers: int, tag: str, handler_process: bool = False
) -> dict[str, float]:
    """items/s from the first lease to drained, and Redis CPU microseconds per item, of W
    processes of the bare lease/complete loop (bare_loop.py) on a range run of `items`; with
    `handler_process`, each with the least an isolated handler needs beside it."""
    run = f"bench-bare-{tag}"
    argv = [sys.executable, str(HERE / "bare_loop.py"), server.url, run]
    if handler_process:
        argv.append("--handler-process")
    figures = drain(server, items, run, argv, workers)
    server.client.delete(*server.client.keys(RunKeys(run).pattern))
    return figures


def wq_startup_s(server: Server, run: str, handler: tuple[str, ...]) -> float:
    """Seconds from spawning `wq work` to its first lease, by the Redis clock (the run's
    first-lease mark), one worker on a one-item run."""
    env = wq_env(server, run)
    subprocess.run([WQ, "seed", "--range", "0:1"], env=env, check=True)
    keys = RunKeys(run)
    spawned = server.now()
    worker = subprocess.Popen([WQ, "work", *handler], env=env, stdout=subprocess.DEVNULL)
    if worker.wait(timeout=120) != 0:
        raise RuntimeError(f"wq worker exited with {worker.returncode}")
    first = int(server.client.hget(keys.meta, layout.FIRST_LEASE_MS) or 0) / 1000
    server.client.delete(*server.client.keys(keys.pattern))
    return first - spawned


def arq_startup_s(server: Server, arq_venv: Path, key: str) -> float:
    """Seconds from spawning arq's worker (`arq --burst`) to the start of its first job, one
    enqueued before the spawn, by the Redis clock (the job writes TIME to `key`)."""
    python = str(arq_venv / "bin" / "python")
    subprocess.run([python, str(HERE / "arq_worker.py"), server.url, key], check=True)
    env = {**os.environ, "ARQ_REDIS_URL": server.url, "PYTHONPATH": str(HERE)}
    argv = [str(arq_venv / "bin" / "arq"), "--burst", "arq_worker.WorkerSettings"]
    spawned = server.now()
    worker = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = worker.communicate(timeout=120)
    if worker.returncode != 0:
        raise RuntimeError(f"arq worker exited with {worker.returncode}: {err.decode()}")
    started = float(server.client.get(key) or 0)
    server.client.delete(key, *server.client.keys("arq:*"))
    return started - spawned


def judged_rounds(server: Server, items: int, workers: int, rounds: int) -> dict[str, Any]:
    """The bar's ratios at `workers`, `rounds` times in turn (which of wq, the bare loop and
    the bare loop with a handler process goes first rotates): on two busy cores one run's
    items/s swings by a third either way, so each ratio is the median of its rounds'."""
    kinds: dict[str, Callable[[str], dict[str, float]]] = {
        "wq": lambda tag: run_wq(server, items, workers, tag),
        "bare": lambda tag: run_bare(server, items, workers, tag),
        "bare_handler": lambda tag: run_bare(server, items, workers, tag, handler_process=True),
    }
    order = list(kinds)
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    for n in range(rounds):
        for kind in order[n % 3 :] + order[: n % 3]:
            rates[kind].append(kinds[kind](f"judged-{n}-{kind}")["rate"])

    def ratios(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rates[a], rates[b], strict=True)]

    return {
        "workers": workers,
        "rates": rates,
        "of_bare": ratios("wq", "bare"),
        "bare_handler_of_bare": ratios("bare_handler", "bare"),
        "of_bare_handler": ratios("wq", "bare_handler"),
    }


# How each environment loads redis-py at its lightest: in wq's, as wq.store loads it (what no
# wq command uses deferred, OpenTelemetry hidden); in arq's, with OpenTelemetry hidden (arq
# uses redis-py's asyncio client, which wq defers).
WQ_LOADS_REDIS = "import wq.store\n"
ARQ_LOADS_REDIS = "sys.modules['opentelemetry'] = None\n"


def floor_startup_s(server: Server, python: str, key: str, loads_redis: str) -> float:
    """Seconds from spawning `python` to its first Redis call, when all it does is import what
    both workers cannot start without (click and redis-py, loaded as `loads_redis` says) and
    make that call: the floor of start-up in that environment, by the Redis clock as the
    others."""
    code = (
        "import sys\n"
        f"{loads_redis}"
        "import click, redis\n"
        "client = redis.Redis.from_url(sys.argv[1])\n"
        "seconds, micros = client.time()\n"
        "client.set(sys.argv[2], f'{seconds}.{micros:06d}')\n"
    )
    spawned = server.now()
    subprocess.run([python, "-c", code, server.url, key], check=True)
    started = float(server.client.get(key) or 0)
    server.client.delete(key)
    return started - spawned


def startup_s(server: Server, arq_venv: Path, runs: int = 5) -> dict[str, list[float]]:
    """Spawn to first item, `runs` times each, in turn so that a machine whose speed drifts
    weighs on all alike: `wq work` as the wq runs here run it (the python handler isolated in
    a process, the default), `wq work --handler demo` (no handler process), and arq's worker;
    and the floor of each environment (floor_startup_s), wq's and arq's."""
    isolated = ("--handler", "python", "--python", "noop:noop")
    demo = ("--handler", "demo", "--demo-sleep", "0")
    arq_python = str(arq_venv / "bin" / "python")
    # Byte-compiled first, as pip compiles wq in the image and arq in its venv: an editable
    # install run under PYTHONDONTWRITEBYTECODE would compile every module at every start.
    for package in (Path(wq.__file__).parent, HERE):
        compileall.compile_dir(package, quiet=1)
    times: dict[str, list[float]] = {k: [] for k in ("wq", "wq_demo", "arq", "floor", "arq_floor")}
    for n in range(runs):
        times["wq"].append(wq_startup_s(server, f"bench-startup-{n}", isolated))
        times["wq_demo"].append(wq_startup_s(server, f"bench-startup-demo-{n}", demo))
        times["arq"].append(arq_startup_s(server, arq_venv, f"bench-arq-startup-{n}"))
        times["floor"].append(
            floor_startup_s(server, sys.executable, f"bench-floor-{n}", WQ_LOADS_REDIS)
        )
        times["arq_floor"].append(
            floor_startup_s(server, arq_python, f"bench-arq-floor-{n}", ARQ_LOADS_REDIS)
        )
    return times


def arq_pin(package: str) -> str:
    """The version of `package` in arq's venv: its pin in requirements-arq.txt."""
    pins = re.findall(rf"^{package}==(\S+)", ARQ_REQUIREMENTS.read_text(), re.MULTILINE)
    return pins[0] if pins else "?"


def run_docs(server: Server, items: int, workers: int, tag: str) -> float:
    queue = f"docs-{tag}"
    pipe = server.client.pipeline(transaction=False)
    for start in range(0, items, 10_000):
        pipe.rpush(queue, *range(start, min(items, start + 10_000)))
    pipe.execute()
    procs = [
        subprocess.Popen([sys.executable, str(HERE / "docs_client.py"), server.url, queue])
        for _ in range(workers)
    ]
    wait_until(lambda: server.client.llen(queue) < items, 60, 0.001)
    started = server.now()
    wait_until(
        lambda: server.client.llen(queue) == 0 and server.client.llen(queue + ":processing") == 0,
        600,
    )
    finished = server.now()
    for p in procs:
        p.wait(60)
    # A tiny list can empty between two reads of the clock: at least a microsecond.
    return items / max(finished - started, 1e-6)


def redis_benchmark(server: Server, clients: int, pipeline: int, requests: int) -> float:
    """redis-benchmark's LPUSH+LPOP rate on the same server: its ceiling for list traffic."""
    out = subprocess.run(
        [
            "redis-benchmark",
            "-p",
            str(server.port),
            "-t",
            "lpush,lpop",
            "-n",
            str(requests),
            "-c",
            str(clients),
            "-P",
            str(pipeline),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rates = [float(x) for x in re.findall(r"([\d.]+) requests per second", out)]
    return sum(rates) / len(rates)


def seed_million(server: Server, workdir: Path, n: int) -> dict[str, float]:
    """Seeding n (1M) string items: through the library, and `wq seed` on a lines file."""
    items = [encode(f"item-{i}") for i in range(n)]
    queue = open_queue(ConnectionConfig(redis_url=server.url, run_id="bench-seed", redis_wait=10))
    started = time.perf_counter()
    result = seed_items(queue, items)
    library_s = time.perf_counter() - started
    assert result.total == n
    queue.admin.purge()
    queue.close()

    lines = workdir / "items.txt"
    lines.write_text("".join(f"item-{i}\n" for i in range(n)))
    env = {
        **os.environ,
        "WQ_REDIS_URL": server.url,
        "WQ_RUN": "bench-seed-cli",
        "WQ_LOG_LEVEL": "warning",
    }
    started = time.perf_counter()
    subprocess.run([WQ, "seed", "--items-file", str(lines)], env=env, check=True)
    cli_s = time.perf_counter() - started
    server.client.delete(*server.client.keys(RunKeys("bench-seed-cli").pattern))
    return {"library_s": library_s, "cli_s": cli_s}


def slowest_call(server: Server, action: Callable[[], object]) -> dict[str, object]:
    """Runs `action` and returns the slowest Redis call it made, from the slow log.

    The slow log takes every call over 0.1 ms here, not only those over the bar, so that the
    table shows how far below the bar the slowest call is. Redis 7 also logs the commands a
    Lua script calls (client address "?:0"); they are inside their script's call, so they are
    left out.
    """
    c = server.client
    c.config_set("slowlog-max-len", 100_000)
    c.config_set("slowlog-log-slower-than", 100)
    c.slowlog_reset()
    started = time.perf_counter()
    action()
    wall_s = time.perf_counter() - started
    entries = [e for e in c.slowlog_get(-1) if _text(e["client_address"]) != "?:0"]
    c.config_set("slowlog-log-slower-than", 10_000)  # Redis's default again
    c.slowlog_reset()
    if not entries:
        return {"slowest_ms": 0.1, "command": "(none over 0.1 ms)", "over_bar": 0, "wall_s": wall_s}
    scripts = {hashlib.sha1(script_text(n).encode()).hexdigest(): n for n in script_names()}
    slowest = max(entries, key=lambda e: int(e["duration"]))
    words = _text(slowest["command"]).split()
    name = words[0].upper()
    if name == "EVALSHA" and len(words) > 1:
        name = f"EVALSHA {scripts.get(words[1], words[1][:8])}.lua"
    return {
        "slowest_ms": int(slowest["duration"]) / 1000,
        "command": name,
        "over_bar": sum(1 for e in entries if int(e["duration"]) > CALL_BAR_MS * 1000),
        "wall_s": wall_s,
    }


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def whole_run_calls(server: Server, n: int = 1_000_000) -> dict[str, dict[str, object]]:
    """The slowest Redis call of seed, retry-dead, adopt and purge on n-item runs.

    The n dead items are written directly with a pipeline (as if every item had been leased
    and had failed for good); that set-up, like filling the list to adopt, is not measured.
    """
    queue, adopted = (
        open_queue(ConnectionConfig(redis_url=server.url, run_id=run, redis_wait=10))
        for run in ("bench-calls", "bench-calls-adopt")
    )
    c = server.client
    results: dict[str, dict[str, object]] = {}
    items = [encode(f"item-{i}") for i in range(n)]
    results["seed"] = slowest_call(server, lambda: seed_items(queue, items))

    pipe = c.pipeline(transaction=False)
    pipe.hset(queue.keys.meta, layout.CURSOR, n)
    error = "Traceback (most recent call last): ValueError: the handler gave up on this item"
    for start in range(0, n, 1000):
        pipe.hset(queue.keys.dead, mapping={p: error for p in range(start, min(n, start + 1000))})
    pipe.execute()
    results["retry-dead"] = slowest_call(server, queue.admin.retry_dead)
    assert queue.reading.status().pending == n

    source = "bench-calls-list"
    for start in range(0, n, 10_000):
        c.rpush(source, *(f"item-{i}" for i in range(start, min(n, start + 10_000))))
    results["adopt"] = slowest_call(server, lambda: adopt_list(adopted, source))
    assert adopted.reading.status().total == n

    results["purge"] = slowest_call(server, lambda: (queue.admin.purge(), adopted.admin.purge()))
    queue.close()
    adopted.close()
    return results


def plot(results: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    assert isinstance(rows, list)
    workers = [r["workers"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(workers, [r["wq"] for r in rows], "o-", label="wq (batched leases)")
    ax.plot(workers, [r["wq_in_process"] for r in rows], "^--", label="wq, handler in the worker")
    ax.plot(workers, [r["bare"] for r in rows], "v:", label="bare lease/complete loop (the limit)")
    ax.plot(workers, [r["bare_handler"] for r in rows], "x:", label="bare loop + handler process")
    ax.plot(workers, [r["docs"] for r in rows], "s-", label="Kubernetes docs client")
    ceiling = results["ceiling"]
    assert isinstance(ceiling, dict)
    ax.axhline(
        ceiling["unpipelined"],
        color="grey",
        ls="--",
        label="redis-benchmark, 1 request per round trip",
    )
    ax.axhline(ceiling["pipelined"], color="black", ls=":", label="redis-benchmark, pipelined")
    ax.set_yscale("log")
    ax.set_xlabel("worker processes")
    ax.set_ylabel("items (or requests) per second")
    ax.set_xticks(workers)
    ax.set_title(f"Queue overhead on {os.cpu_count()} cores: no-op items")
    ax.legend(fontsize=8, loc="center right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--items", type=int, default=1_000_000, help="wq items per run")
    parser.add_argument("--docs-items", type=int, default=20_000, help="docs client items per run")
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument(
        "--wq-only", action="store_true", help="only the wq runs: no docs client, no extras"
    )
    parser.add_argument("--repeat", type=int, default=1, help="wq runs per worker count")
    parser.add_argument(
        "--isolation",
        choices=("process", "none", "both"),
        default="process",
        help="--wq-only: the python handler's --python-isolation; both: paired runs of each",
    )
    parser.add_argument(
        "--run-items",
        type=int,
        default=1_000_000,
        help="items of the runs that seeding and the whole-run calls are measured on",
    )
    parser.add_argument(
        "--benchmark-requests", type=int, default=200_000, help="redis-benchmark's -n"
    )
    parser.add_argument(
        "--arq-venv", type=Path, default=ARQ_VENV, help="arq's venv (make venv-arq)"
    )
    parser.add_argument(
        "--judged-rounds",
        type=int,
        default=5,
        help="rounds in turn of the bar's three runs at 4 workers (or the largest count)",
    )
    args = parser.parse_args()
    if args.wq_only:
        kinds = ("process", "none") if args.isolation == "both" else (args.isolation,)
        with tempfile.TemporaryDirectory() as tmp:
            server = Server(Path(tmp))
            try:
                for w in (int(x) for x in args.workers.split(",")):
                    for n in range(args.repeat):
                        rates = {}
                        # Paired, in turn: which goes first alternates.
                        for kind in kinds if n % 2 == 0 else kinds[::-1]:
                            r = run_wq(server, args.items, w, f"w{w}-{n}-{kind}", kind)
                            rates[kind] = r["rate"]
                            print(
                                f"workers={w} isolation={kind} wq={r['rate']:,.0f}/s "
                                f"redis_cpu={r['cpu_us']:.2f}us/item "
                                f"workers_cpu={r['workers_cpu_us']:.2f}us/item "
                                f"keys={r['bytes']:.1f}B/item",
                                flush=True,
                            )
                        if len(rates) == 2:
                            ratio = rates["process"] / rates["none"]
                            print(f"workers={w} isolated/in-process={ratio:.3f}", flush=True)
            finally:
                server.stop()
        return
    if shutil.which("redis-benchmark") is None:
        sys.exit("redis-benchmark not found: apt-get install redis-tools")
    if not (args.arq_venv / "bin" / "arq").exists():
        sys.exit(f"arq not found in {args.arq_venv}: make venv-arq")
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            ceiling = {
                "unpipelined": redis_benchmark(server, 4, 1, args.benchmark_requests),
                "pipelined": redis_benchmark(server, 4, 32, args.benchmark_requests),
            }
            rows = []
            for w in (int(x) for x in args.workers.split(",")):
                # The python handler isolated (the default) and in process, back to back.
                measured = run_wq(server, args.items, w, f"w{w}")
                in_process = run_wq(server, args.items, w, f"w{w}-none", "none")
                bare = run_bare(server, args.items, w, f"w{w}")
                isolating = run_bare(server, args.items, w, f"w{w}-handler", handler_process=True)
                wq_rate = measured["rate"]
                docs_rate = run_docs(server, args.docs_items, w, f"w{w}")
                rows.append(
                    {
                        "workers": w,
                        "wq": wq_rate,
                        "cpu_us": measured["cpu_us"],
                        "workers_cpu_us": measured["workers_cpu_us"],
                        "bytes": measured["bytes"],
                        "wq_in_process": in_process["rate"],
                        "isolated_ratio": wq_rate / in_process["rate"],
                        "bare": bare["rate"],
                        "bare_cpu_us": bare["cpu_us"],
                        "of_bare": wq_rate / bare["rate"],
                        "bare_handler": isolating["rate"],
                        "bare_handler_of_bare": isolating["rate"] / bare["rate"],
                        "of_bare_handler": wq_rate / isolating["rate"],
                        "docs": docs_rate,
                        "speedup": wq_rate / docs_rate,
                        "of_ceiling": wq_rate / ceiling["unpipelined"],
                        "of_pipelined": wq_rate / ceiling["pipelined"],
                    }
                )
                print(
                    f"workers={w} wq={wq_rate:,.0f}/s in-process={in_process['rate']:,.0f}/s "
                    f"bare={bare['rate']:,.0f}/s ({wq_rate / bare['rate']:.0%}) "
                    f"bare+handler={isolating['rate']:,.0f}/s "
                    f"docs={docs_rate:,.0f}/s "
                    f"redis_cpu={measured['cpu_us']:.2f}us/item keys={measured['bytes']:.1f}B/item",
                    flush=True,
                )
            counts = [r["workers"] for r in rows]
            judged_workers = 4 if 4 in counts else counts[-1]
            judged = judged_rounds(server, args.items, judged_workers, args.judged_rounds)
            startup = startup_s(server, args.arq_venv)
            seeding = seed_million(server, Path(tmp), args.run_items)
            calls = whole_run_calls(server, args.run_items)
        finally:
            server.stop()

    results = {
        "cores": os.cpu_count(),
        "items": args.items,
        "ceiling": ceiling,
        "rows": rows,
        "run_items": args.run_items,
        "seed_1m": seeding,
        "startup_s": startup,
        "startup_median_s": {k: statistics.median(v) for k, v in startup.items()},
        "startup_wq_over_arq": statistics.median(startup["wq"]) / statistics.median(startup["arq"]),
        "arq_version": arq_pin("arq"),
        "redis_py": {"wq": importlib.metadata.version("redis"), "arq": arq_pin("redis")},
        "calls_1m": calls,
        "judged": judged,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    run_items = "1M" if args.run_items == 1_000_000 else f"{args.run_items:,}"

    median = results["startup_median_s"]
    above = {
        worker: median[worker] - median["arq_floor" if worker == "arq" else "floor"]
        for worker in ("wq", "wq_demo", "arq")
    }

    def share(ratios: list[float]) -> str:
        return f"{statistics.median(ratios):.0%} ({min(ratios):.0%}-{max(ratios):.0%})"

    def spread(times: list[float]) -> str:
        return f"{statistics.median(times):.3f}s ({min(times):.3f}-{max(times):.3f}s)"

    table = [
        f"{args.items:,} no-op items per wq run on {os.cpu_count()} cores, one redis-server "
        "on loopback. Redis CPU: the server's user + system time over the run, per item. "
        "Workers' CPU: theirs, start-up included. Bytes: what the drained run's keys hold per "
        "item (a range run: its ledger of done items, no outputs). wq: the python handler "
        "isolated in a process of its own per worker (the default), and paired with it, in "
        "the worker's own process (--python-isolation none).",
        "",
        "| workers | wq items/s | in-process items/s | isolated / in-process "
        "| Redis CPU us/item | workers' CPU us/item | bytes/item "
        "| docs client items/s | wq / docs | wq / redis-benchmark (1 req/RTT) "
        "| wq / redis-benchmark (pipelined) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['workers']} | {r['wq']:,.0f} | {r['wq_in_process']:,.0f} "
            f"| {r['isolated_ratio']:.2f} | {r['cpu_us']:.2f} | {r['workers_cpu_us']:.2f} "
            f"| {r['bytes']:.1f} "
            f"| {r['docs']:,.0f} | {r['speedup']:.1f}x "
            f"| {r['of_ceiling']:.2f} | {r['of_pipelined']:.2f} |"
            for r in rows
        ),
        "",
        "The limit: a bare lease/complete loop, batches of 1,000, through wq's store API and "
        "nothing else (bench/bare_loop.py), the same worker count and items, in the same run. "
        "Beside it, the same loop with the least a handler isolated in a process needs "
        "(--handler-process: each batch sent to a forked process that calls the no-op on each "
        "item and answers their durations): what isolation costs any worker.",
        "",
        "| workers | bare loop items/s | its Redis CPU us/item | wq items/s | wq / bare loop "
        "| bare loop + handler process items/s | it / bare loop | wq / it |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['workers']} | {r['bare']:,.0f} | {r['bare_cpu_us']:.2f} | {r['wq']:,.0f} "
            f"| {r['of_bare']:.0%} | {r['bare_handler']:,.0f} "
            f"| {r['bare_handler_of_bare']:.0%} | {r['of_bare_handler']:.0%} |"
            for r in rows
        ),
        "",
        f"Judged at {judged['workers']} workers, {args.judged_rounds} rounds in turn of the "
        "three, the median of the rounds' ratios (min-max): wq "
        f"{share(judged['of_bare'])} of the bare loop's items/s (bar: >= 80% at 4 workers); "
        f"the bare loop with a handler process {share(judged['bare_handler_of_bare'])} of it, "
        f"and wq {share(judged['of_bare_handler'])} of that.",
        "",
        f"redis-benchmark LPUSH/LPOP ceiling, 4 clients: {ceiling['unpipelined']:,.0f} req/s "
        f"(1 request per round trip), {ceiling['pipelined']:,.0f} req/s (pipelined x32).",
        f"Start-up, spawn to first item by the Redis clock, median of {len(startup['wq'])} in "
        f"turn (min-max): `wq work` to its first lease {spread(startup['wq'])} (python handler "
        f"isolated, as above; --handler demo {spread(startup['wq_demo'])}); arq "
        f"{results['arq_version']}'s worker to its first job {spread(startup['arq'])}; "
        f"wq / arq {results['startup_wq_over_arq']:.2f} (bar: <= 1). The floor, a process that "
        "imports click and redis-py and makes one call: "
        f"{spread(startup['floor'])} with wq's redis-py {results['redis_py']['wq']}, "
        f"{spread(startup['arq_floor'])} with arq's {results['redis_py']['arq']}; above its "
        f"floor, wq {above['wq'] * 1000:.0f} ms (--handler demo "
        f"{above['wq_demo'] * 1000:.0f} ms), arq {above['arq'] * 1000:.0f} ms.",
        f"Seeding {run_items} items: {seeding['library_s']:.2f}s through the library, "
        f"{seeding['cli_s']:.2f}s with `wq seed --items-file` ({run_items} lines, incl. "
        "start-up).",
        "",
        f"Slowest single Redis call of an operation on a {run_items}-item run "
        f"(bar: {CALL_BAR_MS:g} ms):",
        "",
        "| operation | slowest call ms | that call | calls over the bar | seconds in all |",
        "|---|---:|---|---:|---:|",
        *(
            f"| {op} | {r['slowest_ms']:.1f} | {r['command']} | {r['over_bar']} "
            f"| {r['wall_s']:.2f} |"
            for op, r in calls.items()
        ),
    ]
    text = "\n".join(table)
    (args.out / "results.md").write_text(text + "\n")
    plot(results, args.out / "throughput.png")
    print()
    print(text)
    print(f"\nwrote {args.out}/results.md, results.json, throughput.png")


if __name__ == "__main__":
    main()
