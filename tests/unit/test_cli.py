"""The command line through its real entry point: help, errors, and the whole flow."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import redis

from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.conftest import make_queue
from wq.base.item import encode
from wq.seed.items_source import ItemRange
from wq.seed.seeder import seed_items, seed_range
from wq.store.local_redis import RedisServer, free_port

# Digests (wq/layout.py) of the items "a" and "b", which run seeded-ab holds, and "a", "c".
AB = hashlib.sha256(b'"a"\n"b"\n').hexdigest()
AC = hashlib.sha256(b'"a"\n"c"\n').hexdigest()

SUBCOMMANDS = [
    "seed",
    "work",
    "status",
    "report",
    "dead",
    "digest",
    "retry-dead",
    "reap",
    "purge",
    "run",
    "exporter",
    "autoscale",
]


def test_help_lists_every_subcommand() -> None:
    result = wq("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert f"  {name}" in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help_with_env_vars(name: str) -> None:
    result = wq(name, "--help")
    assert result.returncode == 0
    assert "Usage: wq" in result.stdout
    if name not in ("run", "digest", "exporter"):  # digest needs no run: it reads the items only
        assert "env var: WQ_RUN" in result.stdout
    if name == "exporter":  # every run, or those of its own variable: never the pods' WQ_RUN
        text = " ".join(result.stdout.split())
        assert "env var: WQ_EXPORTER_RUNS]" in text
        assert "env var: WQ_RUN;" not in text
        assert "env var: WQ_RUN]" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["work", "--run", "r", "--handler", "nope"], "'nope' is not one of"),
        (["status", "--run", "r", "--redis-url", "http://x:1"], "has scheme 'http'"),
        (["status", "--run", "r", "--redis-url", "redis://h:notaport"], "bad port"),
        (["status", "--run", "r", "--redis-url", "redis://[::1/0"], "is malformed"),
        (["status", "--run", "r", "--redis-cluster", "--redis-url", "unix:///x"], "over TCP"),
        (["status", "--run", ""], "run id '' is not valid"),
        (["status", "--run", "a b"], "run id 'a b' is not valid"),
        (["status", "--run", "r\n"], "run id 'r\\n' is not valid"),
        (["work", "--run", "r", "--lease", "-1"], "-1 is not in the range 0.1 to"),
        (["work", "--run", "r", "--lease", "nan"], "'nan' is not a finite number"),
        (["work", "--run", "r", "--lease", "1e300"], "is not in the range 0.1 to"),
        (["status", "--run", "r", "--redis-wait", "inf"], "'inf' is not a finite number"),
        (["work", "--run", "r", "--demo-sleep", "x"], "'x' is not a valid float"),
        (["work", "--run", "r", "--max-attempts", "1e23"], "'1e23' is not a valid integer"),
        (["work", "--run", "r", "--concurrency", "0"], "0 is not in the range"),
        (["work", "--run", "r", "--max-attempts", "-2"], "-2 is not in the range"),
        (["seed", "--run", "r", "--items-file", "/nonexistent/items.txt"], "does not exist"),
        (["seed", "--run", "r", "--range", "0:5", "a"], "exactly one way"),
        (
            ["seed", "--run", "r"],
            "exactly one way: ITEMS, --items-file, --items-url, --items-from, --list, --range "
            "or --adopt-list",
        ),
        (["seed", "--run", "r", "--range", "1:x"], "must be integers"),
        (["seed", "--run", "r", "--range", "0:1e23"], "must be integers"),
        (["seed", "--run", "r", "--range", "10:0"], "item range '10:0' holds no items"),
        (["seed", "--run", "r", "--range", "3:3"], "item range '3:3' holds no items"),
        (["seed", "--run", "r", "--range", "0:5:-1"], "item range '0:5:-1' holds no items"),
        (["run", "--range", "5:5"], "item range '5:5' holds no items"),
        (
            ["seed", "--run", "r", "--adopt-list", "wq-test-no-such-list"],
            "list 'wq-test-no-such-list' is empty or does not exist: nothing to adopt",
        ),
        (
            ["seed", "--run", "r", "--adopt-list", "wq-test-a-string"],
            "key 'wq-test-a-string' holds a string, not a list",
        ),
        (
            ["seed", "--run", "r", "--adopt-list", "wq-test-binary-list"],
            "list 'wq-test-binary-list' holds an item that is not UTF-8 text",
        ),
        (
            ["seed", "--run", "seeded-ab", "a", "c"],
            f"run seeded-ab was already seeded with different items (digest {AB[:12]}..., "
            f"these are {AC[:12]}...)",
        ),
        (["seed", "--run", "seeded-ab", "--range", "0:2"], "already seeded with different items"),
        (
            ["seed", "--run", "seeded-range", "--range", "0:11"],
            "run seeded-range was already seeded with different items",
        ),
        (
            ["seed", "--run", "r", "--range", "0:99999999999999999999"],
            "END 99999999999999999999 is outside the signed 64-bit range",
        ),
        (
            ["seed", "--run", "r", "--range", "-9223372036854775808:0"],
            "START -9223372036854775808 is outside the signed 64-bit range",
        ),
        (["run", "--range", "0:9:99999999999999999999"], "STEP 99999999999999999999 is outside"),
        (["work", "--run", "r", "--handler", "python"], "needs --python MODULE:FUNCTION"),
        (["work", "--run", "r", "--handler", "command"], "command handler needs a command"),
        (["work", "--run", "r", "--", "echo"], "add --handler command"),
        (
            ["work", "--run", "r", "--handler", "command", "--shell", "--", "echo '{{ item }}'"],
            "{{ item }} is inside single quotes",
        ),
        (
            ["work", "--run", "r", "--handler", "command", "--", "sh", "-c", "echo {{ item }}"],
            "sh -c runs its script as shell code",
        ),
        (["work", "--run", "r", "--handler", "python", "--python", "json:nope"], "no function"),
        (
            ["work", "--run", "r", "--item-timeout", "1", "--concurrency", "2"],
            "needs --concurrency 1",
        ),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["report", "--run", "r", "--state", "finished"], "'finished' is not one of 'pending'"),
        (["report", "--run", "r", "--format", "xml"], "'xml' is not one of 'jsonl', 'csv'"),
        (["report", "--run", "never-seeded"], "run 'never-seeded' is not seeded"),
        (["digest"], "give items in exactly one way"),
        (["digest", "--items-file", "/nonexistent/items.txt"], "does not exist"),
        (["digest", "--range", "3:3"], "item range '3:3' holds no items"),
        (["work", "--run", "r", "--max-output-bytes", "-1"], "-1 is not in the range 0 to"),
        (
            ["work", "--run", "r", "--capture-stdout", "--handler", "demo"],
            "--capture-stdout is for the command handler, and the handler is 'demo'",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(
    args: list[str], message: str, redis_url: str, client: "redis.Redis"
) -> None:
    prepare_bad_input(client, redis_url)
    result = wq(*args, env={"WQ_REDIS_URL": redis_url})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wq: error: ")
    assert message in lines[0]


def prepare_bad_input(client: "redis.Redis", redis_url: str) -> None:
    """Keys and runs the bad-input cases above refer to."""
    client.set("wq-test-a-string", "x")
    client.delete("wq-test-binary-list")
    client.rpush("wq-test-binary-list", b"\xff\xfe")
    for run, items in (("seeded-ab", [encode("a"), encode("b")]), ("seeded-range", None)):
        queue = make_queue(redis_url, run)
        if items is None:
            seed_range(queue, ItemRange.parse("0:10"))
        else:
            seed_items(queue, items)
        queue.close()


def test_bad_items_file_names_the_file_and_line(tmp_path: Path, redis_url: str) -> None:
    f = tmp_path / "items.txt"
    f.write_text("a\n\nb\n")
    result = wq("seed", "--run", "r", "--items-file", str(f), env={"WQ_REDIS_URL": redis_url})
    assert result.returncode == 2
    assert f"items file '{f}' line 2 is blank" in result.stderr


def test_redis_outage_is_an_error_never_an_empty_queue() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    for args in (["work", "--run", "r"], ["status", "--run", "r"], ["seed", "--run", "r", "a"]):
        result = wq(*args, "--redis-wait", "1", env={"WQ_REDIS_URL": url})
        assert result.returncode == 1, result.stderr
        assert "unreachable for" in result.stderr
        assert "Traceback" not in result.stderr


def test_wrong_password_is_a_configuration_error(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        import redis

        redis.Redis(port=server.port).config_set("requirepass", "s3cret")
        result = wq(
            "status", "--run", "r", env={"WQ_REDIS_URL": server.url, "WQ_REDIS_PASSWORD": "wrong"}
        )
        assert result.returncode == 2
        assert "refused the credentials" in result.stderr
        ok = wq(
            "status", "--run", "r", env={"WQ_REDIS_URL": server.url, "WQ_REDIS_PASSWORD": "s3cret"}
        )
        assert ok.returncode == 0, ok.stderr
    finally:
        server.stop()


@pytest.mark.parametrize("in_url", [False, True], ids=["WQ_REDIS_PASSWORD", "in-url"])
def test_item_processes_never_see_the_redis_password(
    tmp_path: Path, run_id: str, in_url: bool
) -> None:
    """Issue 9 (10): the command handler's processes get the worker's environment without the
    password, whether it came as WQ_REDIS_PASSWORD or inside WQ_REDIS_URL."""
    from wq.store.local_redis import RedisServer

    secret = "s3cret-Zq8"
    server = RedisServer(tmp_path)
    server.start()
    try:
        import redis

        redis.Redis(port=server.port).config_set("requirepass", secret)
        url = f"redis://127.0.0.1:{server.port}/0"
        env = {"WQ_RUN": run_id}
        if in_url:
            env["WQ_REDIS_URL"] = f"redis://:{secret}@127.0.0.1:{server.port}/0"
        else:
            env.update(WQ_REDIS_URL=url, WQ_REDIS_PASSWORD=secret)
        assert wq("seed", "x", env=env).returncode == 0
        worked = wq("work", "--handler", "command", "--", "env", env=env)
        assert worked.returncode == 0, worked.stderr
    finally:
        server.stop()
    seen = dict(
        line.removeprefix("[item 0] ").split("=", 1)
        for line in worked.stdout.splitlines()
        if "=" in line
    )
    assert seen["WQ_ITEM"] == "x"
    assert seen["WQ_RUN"] == run_id
    assert secret not in worked.stdout
    assert "WQ_REDIS_PASSWORD" not in seen
    # A URL without credentials tells where Redis is, and stays; one with them goes.
    assert seen.get("WQ_REDIS_URL") == (None if in_url else url)


def test_seed_work_status_flow(redis_url: str, run_id: str, tmp_path: Path) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    items = tmp_path / "items.yaml"
    items.write_text("- apple\n- {name: banana}\n- 'comma, separated'\n")
    seeded = wq("seed", "--items-file", str(items), env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert "outcome=seeded total=3" in seeded.stderr
    again = wq("seed", "--items-file", str(items), env=env)
    assert "outcome=already_seeded total=3" in again.stderr

    worked = wq("work", "--demo-sleep", "0", env=env)
    assert worked.returncode == 0, worked.stderr
    assert worked.stdout.splitlines() == [
        "Working on apple",
        'Working on {"name":"banana"}',
        "Working on comma, separated",
    ]
    assert "event=worker.drained" in worked.stderr

    status = wq("status", "--json", "--check", env=env)
    assert status.returncode == 0
    data = json.loads(status.stdout)
    assert (data["total"], data["done"], data["pending"], data["in_flight"]) == (3, 3, 0, 0)
    assert data["state"] == "drained"
    # The digest of the items as stored (wq/layout.py), in --json and in the text.
    digest = hashlib.sha256(b'"apple"\n{"name":"banana"}\n"comma, separated"\n').hexdigest()
    assert data["digest"] == digest
    assert f"digest     {digest}" in wq("status", env=env).stdout.splitlines()


def test_dead_items_fail_the_check_and_can_be_retried(
    redis_url: str, run_id: str, tmp_path: Path
) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    assert wq("seed", "fine", "poison", env=env).returncode == 0
    message = tmp_path / "termination-log"
    message.touch()
    worked = wq(
        "work",
        "--handler",
        "python",
        "--python",
        "tests.unit.sample_handlers:fail_on_poison",
        "--max-attempts",
        "2",
        "--fail-on-dead",
        env={**env, "WQ_TERMINATION_LOG": str(message)},
    )
    assert worked.returncode == 3
    assert message.read_text().startswith(
        f"worker {worked_id(worked.stderr)} of run {run_id} drained with dead items (exit 3): "
        "1 item(s) processed, 2 failed attempt(s), mean item time "
    )
    [line] = [x for x in worked.stderr.splitlines() if "event=run.dead_items" in x]
    assert "level=error" in line
    assert " dead=1 " in line
    assert wq("status", "--check", env=env).returncode == 1
    dead = wq("dead", "--json", env=env)
    assert json.loads(dead.stdout) == {
        "position": 1,
        "item": "poison",
        "error": "cannot digest poison",
    }
    retried = wq("retry-dead", env=env)
    assert "requeued 1 dead item(s)" in retried.stdout
    status = json.loads(wq("status", "--json", env=env).stdout)
    assert (status["pending"], status["dead"]) == (1, 0)
    purged = wq("purge", "--yes", env=env)
    assert purged.returncode == 0
    assert json.loads(wq("status", "--json", env=env).stdout)["state"] == "not seeded"


def worked_id(log: str) -> str:
    """The worker id its start line names."""
    [start] = [x for x in log.splitlines() if "event=worker.start" in x]
    return start.split(" worker=", 1)[1].split()[0]


def test_work_never_exits_0_on_an_unseeded_run(redis_url: str, run_id: str) -> None:
    result = wq("work", "--seed-wait", "0.5", env={"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id})
    assert result.returncode == 1
    assert f"run '{run_id}' was not seeded within 0.5s" in result.stderr


def test_command_from_env_as_json_list(redis_url: str, run_id: str) -> None:
    env = {
        "WQ_REDIS_URL": redis_url,
        "WQ_RUN": run_id,
        "WQ_HANDLER": "command",
        "WQ_COMMAND": '["echo", "got {{ item }}"]',
    }
    assert wq("seed", "x y", env=env).returncode == 0
    result = wq("work", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[item 0] got x y\n"
    bad = wq("work", env={**env, "WQ_COMMAND": "echo hi"})
    assert bad.returncode == 2
    assert "WQ_COMMAND must be a JSON list" in bad.stderr


def test_reap_reclaims_expired_leases(redis_url: str, run_id: str) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    assert wq("seed", "a", "b", env=env).returncode == 0
    queue = make_queue(redis_url, run_id)
    queue.leases.lease(1, 0.05, "gone-a")  # leases of one item each: their expiry is charged
    queue.leases.lease(1, 0.05, "gone-b")
    wait_until("the leases to expire", lambda: queue.leases.lease(0, 1, "probe").expired_leases, 10)
    result = wq("reap", "--max-attempts", "1", env=env)
    assert "requeued 0, dead-lettered 2" in result.stdout
    queue.close()


def test_run_does_everything_locally() -> None:
    result = wq("run", "--workers", "2", "--demo-sleep", "0", "apple", "banana", "cherry")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()[:3]) == [
        "Working on apple",
        "Working on banana",
        "Working on cherry",
    ]
    assert "done       3" in result.stdout
    assert "worker exit codes [0, 0]" in result.stdout


def test_status_watch_follows_a_run_until_it_drains(redis_url: str, run_id: str) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    # The watch starts before the run exists, so it has to follow it to the end.
    watcher = subprocess.Popen(
        wq_argv("status", "--watch", "--interval", "0.2", "--check"),
        env=wq_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watcher.stderr is not None
    assert "waiting for it to be seeded" in watcher.stderr.readline()
    assert wq("seed", "a", "b", "c", "d", env=env).returncode == 0
    assert wq("work", "--demo-sleep", "0", env=env).returncode == 0
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0
    lines = err.splitlines()
    assert "4/4 100.0%" in lines[-1]
    assert "in flight 0" in lines[-1]
    assert "state      drained" in out


def test_json_logs_are_one_object_per_line(redis_url: str, run_id: str) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    result = wq("seed", "x", "--log-format", "json", env=env)
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert (record["event"], record["outcome"], record["total"]) == ("seed.done", "seeded", 1)


def test_a_full_redis_is_a_clear_error_naming_what_to_raise(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        admin = server.connect()
        admin.config_set("maxmemory", admin.info("memory")["used_memory"] + 200_000)
        admin.close()
        items = tmp_path / "items.txt"
        items.write_text("".join(f"item-{n:08d}-{'x' * 40}\n" for n in range(100_000)))
        result = wq(
            "seed", "--run", "r", "--items-file", str(items), env={"WQ_REDIS_URL": server.url}
        )
        assert result.returncode == 1, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert "is full" in line
        assert "redis.resources.limits.memory" in line
        assert "itemRange" in line
    finally:
        server.stop()


def test_status_shows_the_autoscalers_last_decision(redis_url: str, run_id: str) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    assert wq("seed", "a", "b", env=env).returncode == 0
    plain = wq("status", "--json", env=env)
    assert "autoscale" not in json.loads(plain.stdout)
    assert "parallelism" not in wq("status", env=env).stdout
    queue = make_queue(redis_url, run_id)
    queue.admin.record_scaling("r-1-worker", 3, 5, "2 item(s) left at 1 per pod")
    data = json.loads(wq("status", "--json", env=env).stdout)
    assert data["autoscale"]["job"] == "r-1-worker"
    assert (data["autoscale"]["current"], data["autoscale"]["target"]) == (3, 5)
    assert data["autoscale"]["reason"] == "2 item(s) left at 1 per pod"
    text = wq("status", env=env).stdout.splitlines()
    assert any(
        line.startswith("parallelism  3 -> 5 (autoscaled job r-1-worker, decided 2")
        for line in text
    )
    assert "scaling      2 item(s) left at 1 per pod" in text
    checked = wq("status", "--check", "--json", env=env)
    assert json.loads(checked.stdout)["autoscale"]["target"] == 5
    queue.close()
