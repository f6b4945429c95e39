"""wq on a real Redis Cluster: three `redis-server --cluster-enabled yes` on loopback, and runs
whose slots live on each of the nodes."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from tests.unit.cli_runner import wq, wq_argv, wq_env
from wq.store.keys import RunKeys
from wq.store.local_redis import LocalCluster, RedisServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# The README's sharded run (test_the_readmes_sharded_run).
WQ_CLUSTER = {"WQ_REDIS_CLUSTER": "true", "WQ_RUN": "big"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        yield local.nodes
    finally:
        local.stop()


def runs_on_every_node(nodes: list[RedisServer]) -> dict[int, str]:
    """A run id per node port, whose keys' slot that node serves."""
    client = RedisCluster(host="127.0.0.1", port=nodes[0].port)
    try:
        owners = {}
        for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
            owners[(int(start), int(end))] = int(primary[1])
    finally:
        client.close()
    runs: dict[int, str] = {}
    n = 0
    while len(runs) < len(nodes):
        run = f"run-{n}"
        slot = key_slot(run.encode())
        port = next(p for (a, b), p in owners.items() if a <= slot <= b)
        runs.setdefault(port, run)
        n += 1
    return runs


def test_runs_on_every_node_of_a_cluster_seed_work_and_drain(
    cluster: list[RedisServer], tmp_path: Path
) -> None:
    runs = runs_on_every_node(cluster)
    url = cluster[0].url  # any one node: the cluster client finds the others
    for port, run in runs.items():
        env = {"WQ_REDIS_URL": url, "WQ_REDIS_CLUSTER": "true", "WQ_RUN": run}
        items = tmp_path / f"{run}.txt"
        items.write_text("".join(f"{run}-item-{k}\n" for k in range(200)))
        seeded = wq("seed", "--items-file", str(items), env=env)
        assert seeded.returncode == 0, (port, seeded.stderr)
        worked = wq("work", "--demo-sleep", "0", env=env)
        assert worked.returncode == 0, (port, worked.stderr)
        assert worked.stdout.count("Working on") == 200
        status = wq("status", "--check", "--expect-seeded", env=env)
        assert status.returncode == 0, (port, status.stdout, status.stderr)
        report = wq("report", env=env)
        assert report.returncode == 0, (port, report.stderr)
        records = [json.loads(line) for line in report.stdout.splitlines()]
        assert [r["item"] for r in records] == [f"{run}-item-{k}" for k in range(200)]
        assert {(r["state"], r["attempts"]) for r in records} == {("done", 1)}
        assert len({r["worker"] for r in records}) == 1
        purged = wq("purge", "--yes", env=env)
        assert purged.returncode == 0, purged.stderr


def test_a_range_run_and_an_adopted_list_in_another_slot(cluster: list[RedisServer]) -> None:
    runs = list(runs_on_every_node(cluster).values())
    url = cluster[0].url
    client = RedisCluster(host="127.0.0.1", port=cluster[0].port, decode_responses=True)
    try:
        client.rpush("job2", "apple", "banana", "cherry")  # the docs' list, in its own slot
    finally:
        client.close()
    assert key_slot(b"job2") != key_slot(runs[1].encode())
    for run, how in ((runs[0], ["--range", "0:500"]), (runs[1], ["--adopt-list", "job2"])):
        env = {"WQ_REDIS_URL": url, "WQ_REDIS_CLUSTER": "true", "WQ_RUN": run}
        seeded = wq("seed", *how, env=env)
        assert seeded.returncode == 0, seeded.stderr
        worked = wq("work", "--demo-sleep", "0", env=env)
        assert worked.returncode == 0, worked.stderr
        assert wq("status", "--check", env=env).returncode == 0
        purged = wq("purge", "--yes", env=env)
        assert purged.returncode == 0, purged.stderr


def test_a_cluster_node_without_the_cluster_flag_is_a_clear_error(
    cluster: list[RedisServer],
) -> None:
    runs = runs_on_every_node(cluster)
    elsewhere = next(run for port, run in runs.items() if port != cluster[0].port)
    env = {"WQ_REDIS_URL": cluster[0].url, "WQ_RUN": elsewhere}
    result = wq("seed", "a", "b", env=env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "is a Redis Cluster node: pass --redis-cluster" in line


def test_the_exporter_finds_the_runs_of_every_node(cluster: list[RedisServer]) -> None:
    from tests.unit.test_exporter import scrape
    from wq.base.logs import EventLog
    from wq.read.exporter import RunsCollector
    from wq.store.connection import RedisSettings

    runs = list(runs_on_every_node(cluster).values())
    url = cluster[0].url
    for run in runs:
        env = {"WQ_REDIS_URL": url, "WQ_REDIS_CLUSTER": "true", "WQ_RUN": run}
        assert wq("seed", "a", "b", env=env).returncode == 0
    settings = RedisSettings.from_url(url, cluster=True)
    collector = RunsCollector(settings, (), EventLog(level="error"))
    try:
        exposition = scrape(collector)
        assert exposition.up == 1
        assert set(runs) <= exposition.runs()
        assert {exposition.run(run)["wq_items{state=pending}"] for run in runs} == {2}
        assert len(collector.seen[runs[0]].split(",")) == len(cluster)  # a run_id per primary
    finally:
        collector.close()
        for run in runs:
            env = {"WQ_REDIS_URL": url, "WQ_REDIS_CLUSTER": "true", "WQ_RUN": run}
            assert wq("purge", "--yes", env=env).returncode == 0


@pytest.mark.parametrize("source", ["range", "streamed", "progressive"])
def test_a_sharded_run_spreads_over_the_nodes(cluster: list[RedisServer], source: str) -> None:
    url = cluster[0].url
    env = {"WQ_REDIS_URL": url, "WQ_REDIS_CLUSTER": "true", "WQ_RUN": "sharded"}
    lines = "".join(f"{n}\n" for n in range(30000))
    streamed = ["--items-from", "-", "--format", "jsonl"]
    args = {
        "range": ["--range", "0:30000"],
        "streamed": streamed,
        # An open run filled chunk by chunk under its append lock, then sealed.
        "progressive": [*streamed, "--progressive"],
    }[source]
    seeded = wq("seed", *args, "--shards", "3", env=env, stdin=lines)
    assert seeded.returncode == 0, seeded.stderr
    client = RedisCluster(host="127.0.0.1", port=cluster[0].port, decode_responses=True)
    try:
        runs = client.hget(RunKeys("sharded").meta, "shard_runs").split(",")
        nodes = {client.get_node_from_key(RunKeys(run).meta).port for run in runs}
        assert nodes == {node.port for node in cluster}, "a shard on each node"
    finally:
        client.close()
    workers = [
        subprocess.Popen(
            wq_argv("work", "--demo-sleep", "0"), env=wq_env(env), stdout=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    checked = wq("status", "--check", env=env)
    assert checked.returncode == 0, checked.stdout
    assert "every position accounted for once: 30000 done + 0 dead = 30000 total" in checked.stdout
    report = wq("report", "--state", "done", env=env)
    assert [json.loads(line)["item"] for line in report.stdout.splitlines()] == list(range(30000))
    assert wq("purge", "--yes", env=env).returncode == 0
    assert wq("status", env=env).stdout.splitlines()[1].split() == ["state", "not", "seeded"]


def test_the_readmes_sharded_run(cluster: list[RedisServer]) -> None:
    """The README's block of a sharded run, on this cluster and a thousandth of its items."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("export WQ_REDIS_URL=redis://redis-cluster:6379")
    block = text[start : text.index("```", start)]
    block = block.replace("redis://redis-cluster:6379", cluster[0].url)
    block = block.replace("30000000", "30000")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        # `wq` as the README runs it: the one installed beside this interpreter, on PATH.
        env=wq_env({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "every position accounted for once: 30000 done + 0 dead = 30000 total" in result.stdout
    assert re.search(r"^shards\s+3$", result.stdout, re.M), result.stdout
    assert wq("purge", "--yes", env={**WQ_CLUSTER, "WQ_REDIS_URL": cluster[0].url}).returncode == 0
