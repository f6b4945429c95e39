"""Every rejection is one line and exit 2, every transient problem one line and exit 1, through
the real `wq` entry point: the bad inputs found by trying many (issue "Faults cost items, never
the run", item 5). The Hypothesis test in test_cli_fuzz.py tries random ones."""

import bz2
import gzip
import hashlib
import http.server
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from tests.polling import wait_until
from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.servers import HTTPServer
from wq.store.local_redis import RedisServer, free_port

# An argument whose bytes are not UTF-8, as a shell passes $'\xff': Python sees a surrogate
# (PEP 383), and the subprocess gets the byte back.
NOT_UTF8 = os.fsdecode(b"caf\xe9")


def one_line(result: "subprocess.CompletedProcess[str]", code: int, *words: str) -> str:
    """The error line of a command that exited `code`; it must be its only line of stderr."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wq: error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def keys_of(client: "redis.Redis") -> list[str]:
    return sorted(client.scan_iter(count=1000))


# 1. Text that is not UTF-8.


def test_an_items_file_that_is_not_utf8_is_refused_in_every_format(
    tmp_path: Path, redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    before = keys_of(client)
    for name, data in (
        ("items.txt", b"a\n\xff\xfe\n"),
        ("items.jsonl", b'"a"\n"\xff"\n'),
        ("items.json", b'["a", "\xff"]'),
        ("items.yaml", b"- a\n- \xff\n"),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        for command in (["seed", "--run", run_id], ["digest"]):
            result = wq(*command, "--items-file", str(path), env={"WQ_REDIS_URL": redis_url})
            one_line(result, 2, f"items file '{path}' is not UTF-8 text")
    assert keys_of(client) == before


def test_command_line_text_that_is_not_utf8_is_refused(
    redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    before = keys_of(client)
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    for args, name in (
        (["seed", "a", NOT_UTF8], "[ITEMS]..."),
        (["digest", NOT_UTF8], "[ITEMS]..."),
        (["seed", "--adopt-list", NOT_UTF8], "--adopt-list"),
        (["work", "--seed-wait", "0", "--worker-id", NOT_UTF8], "--worker-id"),
        (["work", "--handler", "python", "--python", NOT_UTF8], "--python"),
        (["autoscale", "--job", NOT_UTF8, "--namespace", "x"], "--job"),
    ):
        result = wq(*args, env=env)
        one_line(result, 2, f"Invalid value for '{name}'", "'caf\\udce9' is not UTF-8 text")
    # A password, or a URL that may hold one, is not shown.
    for args, name in (
        (["status", "--redis-password", NOT_UTF8], "--redis-password"),
        (["status", "--redis-url", f"redis://:{NOT_UTF8}@localhost:6379/0"], "--redis-url"),
    ):
        line = one_line(wq(*args, env=env), 2, f"Invalid value for '{name}'", "not UTF-8 text")
        assert "caf" not in line
    result = wq("seed", "--run", NOT_UTF8, "a", env=env)
    one_line(result, 2, "run id 'caf\\udce9' is not valid")
    assert keys_of(client) == before


# 2. Redis URLs: a name that does not resolve (yet) is transient; a URL that is wrong is not.


def test_a_redis_host_that_does_not_resolve_is_transient_exit_1() -> None:
    # What a Service not created yet looks like from a pod: retried for --redis-wait, then 1.
    url = "redis://no-such-host.invalid:6379/0"
    result = wq("status", "--run", "r", "--redis-url", url, "--redis-wait", "0.5")
    one_line(result, 1, f"Redis at {url} unreachable for")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://a..b:6379/0", "host 'a..b' is not a valid host name"),
        (f"redis://{'x' * 64}.svc:6379/0", "is not a valid host name"),
        ("redis://h:6379/0?socket_timeout=abc", "query parameter 'socket_timeout' is not one"),
        ("redis://h:6379/0?foo=1", "query parameter 'foo' is not one wq takes; it takes db,"),
        ("redis://h:6379/0?foo", "query parameter 'foo' is not one wq takes"),
        ("redis://h:6379/0?protocol=7", "query parameter 'protocol' is '7'; it takes 2 or 3"),
        ("redis://h:6379/0?db=x", "query parameter 'db' is 'x'; it takes a database number"),
        ("redis://h:6379/0?db=1&db=2", "query parameter 'db' is given twice"),
        ("redis://h:6379/0?ssl_check_hostname=no", "'ssl_check_hostname' is for rediss://"),
        ("rediss://h:6379/0?ssl_cert_reqs=maybe", "it takes none, optional or required"),
        ("redis+tcp://h:6379/0", "has scheme 'redis+tcp'"),
        ("redis://h:6379/zero", "database 'zero' is not a number"),
    ],
)
def test_a_wrong_redis_url_is_one_line_exit_2(url: str, message: str) -> None:
    result = wq("status", "--run", "r", "--redis-url", url, "--redis-wait", "5")
    one_line(result, 2, message)


# 6. A database the server does not have.


@pytest.mark.parametrize("db", ["/99", "/0?db=16", "/000099"])
def test_a_database_out_of_range_is_one_line_exit_2(redis_server: RedisServer, db: str) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}{db}"
    result = wq("status", "--run", "r", "--redis-url", url, "--redis-wait", "5")
    number = str(int(db.rsplit("=", 1)[-1].lstrip("/")))
    one_line(result, 2, f"Redis at {url} has no database {number} (the server's `databases`")


def test_the_query_parameters_wq_takes_reach_redis(redis_server: RedisServer, run_id: str) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/0?db=3&protocol=3"
    assert wq("seed", "--run", run_id, "--redis-url", url, "a").returncode == 0
    in_db3 = redis.Redis.from_url(f"redis://127.0.0.1:{redis_server.port}/3")
    try:
        assert list(in_db3.scan_iter(f"wq:{{{run_id}}}:*"))
    finally:
        in_db3.close()


# 3. Python handlers: one that cannot be imported stops the worker at its start; one that
# exits while it handles an item fails that item alone.


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import wq_test_no_such_module\n", "No module named 'wq_test_no_such_module'"),
        ("def handle(item:\n", "syntax error (MODULE, line 1): '(' was never closed"),
        ("import sys\nsys.exit(3)\n", "it called sys.exit(3) as it was imported"),
        ("raise RuntimeError('no config')\n", "RuntimeError: no config"),
    ],
)
def test_a_python_handler_that_cannot_be_imported_is_one_line_exit_2(
    tmp_path: Path, redis_url: str, run_id: str, source: str, message: str
) -> None:
    module = tmp_path / "wq_test_handler.py"
    module.write_text(source)
    env = {"WQ_REDIS_URL": redis_url, "PYTHONPATH": str(tmp_path)}
    target = "wq_test_handler:handle"
    expected = f"python handler '{target}': cannot import 'wq_test_handler': "
    expected += message.replace("MODULE", str(module))
    for args in (["work", "--run", run_id, "--seed-wait", "0"], ["run", "a"]):
        result = wq(*args, "--handler", "python", "--python", target, env=env)
        one_line(result, 2, expected)


@pytest.mark.parametrize("concurrency", ["1", "2"])
def test_a_python_handler_that_exits_fails_its_item_and_the_worker_goes_on(
    redis_url: str, run_id: str, concurrency: str
) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    assert wq("seed", "a", "exit", "b", "interrupt", "c", env=env).returncode == 0
    worker = wq(
        "work",
        "--handler",
        "python",
        "--python",
        "tests.unit.sample_handlers:exits",
        "--max-attempts",
        "1",
        "--concurrency",
        concurrency,
        env=env,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    records = {r["item"]: r for r in map(json.loads, wq("report", env=env).stdout.splitlines())}
    assert {item: r["state"] for item, r in records.items()} == {
        "a": "done",
        "exit": "dead",
        "b": "done",
        "interrupt": "dead",
        "c": "done",
    }
    assert records["exit"]["error"] == "the function called sys.exit(7)"
    assert records["interrupt"]["error"] == "the function raised KeyboardInterrupt"


# 4. A report file that cannot be written.


def test_a_report_into_a_missing_directory_is_one_line_exit_2(
    tmp_path: Path, redis_url: str, run_id: str
) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    assert wq("seed", "a", env=env).returncode == 0
    missing = tmp_path / "no-such-dir" / "report.jsonl"
    result = wq("report", "-o", str(missing), env=env)
    one_line(result, 2, f"report file '{missing}' cannot be written in '{missing.parent}': No such")
    one_line(wq("report", "-o", "", env=env), 2, "report file '.' names a directory, not a file")
    assert not missing.parent.exists()
    written = wq("report", "-o", str(tmp_path / "report.jsonl"), env=env)
    assert written.returncode == 0, written.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["report.jsonl"]  # no .part left over


# 5. Compressed sources whose data is bad: a retry reads the same bytes.


def corrupt_sources(tmp_path: Path) -> list[Path]:
    good = b"".join(b"item-%d\n" % n for n in range(10_000))
    flipped = bytearray(gzip.compress(good))
    flipped[len(flipped) // 2] ^= 0xFF
    sources = {
        "not-gzip.txt.gz": b"plain text, not gzip\n",
        "flipped.txt.gz": bytes(flipped),
        "truncated.txt.gz": gzip.compress(good)[:200],
        "not-bz2.txt.bz2": b"plain text, not bzip2\n",
        "truncated.txt.bz2": bz2.compress(good)[:200],
        "not-xz.txt.xz": b"plain text, not xz\n",
    }
    for name, data in sources.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in sources]


def test_a_corrupt_compressed_source_is_one_line_exit_2(
    tmp_path: Path, redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    before = keys_of(client)
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    for path in corrupt_sources(tmp_path):
        for args in (["seed"], ["seed", "--progressive"], ["digest"]):
            for url in (str(path), f"file://{path}"):
                result = wq(*args, "--items-url", url, env=env)
                one_line(result, 2, f"items at '{url}' cannot be decompressed (", "cannot help")
    assert keys_of(client) == before


def test_a_compressed_source_cut_off_in_transit_is_still_transient(
    redis_url: str, run_id: str, http_server: HTTPServer
) -> None:
    body = gzip.compress(os.urandom(1 << 20))  # random: it stays as big compressed

    def hang_up_half_way(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    http_server.routes["/items.txt.gz"] = hang_up_half_way
    url = f"{http_server.url}/items.txt.gz"
    result = wq("seed", "--run", run_id, "--items-url", url, env={"WQ_REDIS_URL": redis_url})
    one_line(result, 1, f"items at '{url}': reading failed", "nothing was seeded: retry")


# 8. A listing whose glob fsspec refuses.


def test_a_glob_that_fsspec_refuses_is_one_line_exit_2(
    tmp_path: Path, redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    (tmp_path / "a.json").write_text("[]")
    before = keys_of(client)
    for glob in (f"{tmp_path}/**.json", f"file://{tmp_path}/a**"):
        for args in (["seed", "--run", run_id], ["seed", "--run", run_id, "--progressive"]):
            result = wq(*args, "--list", glob, env={"WQ_REDIS_URL": redis_url})
            one_line(result, 2, f"listing '{glob}': the glob is refused: Invalid pattern: '**'")
        result = wq("digest", "--list", glob)
        one_line(result, 2, "the glob is refused")
    assert keys_of(client) == before


# 7. wq autoscale of a Job that cannot exist.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--job", ""], "--job '' is not a Job name"),
        (["--job", "Worker_1"], "--job 'Worker_1' is not a Job name"),
        (["--job", "r1-worker", "--namespace", "No_Such"], "--namespace 'No_Such' is not a"),
    ],
)
def test_autoscale_of_a_name_no_job_can_have_is_one_line_exit_2(
    tmp_path: Path, redis_url: str, run_id: str, args: list[str], message: str
) -> None:
    # A kubeconfig that would be used: without the check, the controller would wait for the
    # Job (and a cluster at this address) for minutes.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u, namespace: ns}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
    )
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id, "KUBECONFIG": str(kubeconfig)}
    result = wq("autoscale", "--namespace", "ns", *args, env=env, timeout=30)
    one_line(result, 2, message)


# 10. wq run takes --redis-wait, as every command that connects does.


def test_wq_run_gives_up_on_redis_after_its_redis_wait() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    for args, env in ((["--redis-wait", "0.5"], {}), ([], {"WQ_REDIS_WAIT": "0.5"})):
        result = wq("run", "--redis-url", url, *args, "a", env=env, timeout=20)
        one_line(result, 1, f"Redis at {url} unreachable for", "(limit 0.5s)")


# 9. A source that holds no items is a mistake, as an empty --range is, unless allowed.


def empty_sources(tmp_path: Path) -> list[tuple[list[str], str]]:
    """(arguments, what the error names) of every kind of source, each empty."""
    for name, text in (("empty.txt", ""), ("empty.json", "[]"), ("values.yaml", "items: []\n")):
        (tmp_path / name).write_text(text)
    return [
        (["--items-file", str(tmp_path / "empty.txt")], "holds no items"),
        (["--items-file", str(tmp_path / "values.yaml")], "holds no items"),
        (["--items-url", (tmp_path / "empty.json").as_uri()], "there are no items at"),
        (["--items-from", "-"], "there are no items on standard input"),
        (["--list", f"{tmp_path}/no-such-*.png"], f"listing '{tmp_path}/no-such-*.png' matched"),
    ]


@pytest.mark.parametrize("mode", [[], ["--progressive"], ["--append"]])
def test_an_empty_source_is_refused_unless_allowed(
    tmp_path: Path, redis_url: str, run_id: str, client: "redis.Redis", mode: list[str]
) -> None:
    env = {"WQ_REDIS_URL": redis_url}
    for n, (source, message) in enumerate(empty_sources(tmp_path)):
        run = f"{run_id}-{n}"
        before = keys_of(client)
        refused = wq("seed", "--run", run, *mode, *source, env=env)
        one_line(refused, 2, message, "if an empty run is what you mean, pass --allow-empty")
        assert keys_of(client) == before  # an --append did not open the run either
        for allow in (["--allow-empty"], []):
            extra = {} if allow else {"WQ_ALLOW_EMPTY": "true"}
            seeded = wq("seed", "--run", run, *mode, *source, *allow, env={**env, **extra})
            assert seeded.returncode == 0, seeded.stderr
        status = json.loads(wq("status", "--run", run, "--json", env=env).stdout)
        assert (status["seeded"], status["total"]) == (True, 0)


def test_an_open_run_may_start_from_an_empty_source(
    tmp_path: Path, redis_url: str, run_id: str
) -> None:
    env = {"WQ_REDIS_URL": redis_url}
    for n, (source, _) in enumerate(empty_sources(tmp_path)):
        seeded = wq("seed", "--run", f"{run_id}-{n}", "--open", *source, env=env)
        assert seeded.returncode == 0, seeded.stderr
        assert "outcome=seeded total=0 open=True" in seeded.stderr


def test_digest_and_run_refuse_an_empty_source_unless_allowed(tmp_path: Path) -> None:
    for source, message in empty_sources(tmp_path):
        for command in ("digest", "run"):
            one_line(wq(command, *source), 2, message, "--allow-empty")
        allowed = wq("digest", *source, "--allow-empty")
        assert allowed.stdout.strip() == hashlib.sha256(b"").hexdigest(), allowed.stderr
    ran = wq("run", *empty_sources(tmp_path)[0][0], "--allow-empty")
    assert ran.returncode == 0, ran.stderr


# 11. What trying random command lines found (test_cli_fuzz.py), and its neighbours.


def test_an_error_that_quotes_a_line_break_stays_one_line() -> None:
    result = wq("dead", "--run", "r", "a\nb\u2028c")
    one_line(result, 2, "Got unexpected extra argument (a\\nb\\u2028c)")


def test_purge_without_yes_and_no_answer_is_one_line_exit_2(
    redis_url: str, run_id: str, client: "redis.Redis"
) -> None:
    env = {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id}
    assert wq("seed", "a", env=env).returncode == 0
    before = keys_of(client)
    result = wq("purge", env=env, stdin="")  # a script's, or a Job's, empty standard input
    one_line(result, 2, f"Delete all keys of run {run_id}? had no answer", "pass --yes")
    assert keys_of(client) == before
    assert wq("purge", env=env, stdin="n\n").returncode == 1  # said no
    assert keys_of(client) == before
    assert wq("purge", env=env, stdin="y\n").returncode == 0
    assert not list(client.scan_iter(f"wq:{{{run_id}}}:*"))


def test_the_cluster_flag_on_a_plain_redis_is_one_line_exit_2(redis_url: str) -> None:
    result = wq("status", "--run", "r", "--redis-cluster", env={"WQ_REDIS_URL": redis_url})
    one_line(result, 2, "is not a Redis Cluster node (its cluster mode is off): drop")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--items-url", "http://[::1"], "items URL 'http://[::1' is malformed"),
        (["--list", "http://[::1/*"], "is malformed"),
        (["--items-url", "s3://"], "items URL 's3://' names no bucket"),
        (["--items-url", "gs://bucket"], "names a bucket, not an object in it"),
        (["--items-url", "http://"], "items URL 'http://' names no host"),
        (["--list", "s3:///*.json"], "listing 's3:///*.json': the glob names no bucket"),
        (["--items-url", "DIR"], "items at 'DIR' is a directory, not a file"),
        (["--items-url", "file://DIR"], "is a directory, not a file"),
        (["--items-url", "DIR/file.txt/below"], "items at 'DIR/file.txt/below' does not exist"),
    ],
)
def test_an_items_url_that_names_no_object_is_one_line_exit_2(
    tmp_path: Path, redis_url: str, run_id: str, args: list[str], message: str
) -> None:
    (tmp_path / "file.txt").write_text("a\n")
    args = [a.replace("DIR", str(tmp_path)) for a in args]
    message = message.replace("DIR", str(tmp_path))
    for command in (["seed", "--run", run_id], ["digest"]):
        one_line(wq(*command, *args, env={"WQ_REDIS_URL": redis_url}), 2, message)


def test_a_path_no_retry_can_open_is_one_line_exit_2(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    too_long = str(tmp_path / ("x" * 300))
    for path, reason in ((too_long, "File name too long"), (str(tmp_path / "loop-a"), "links")):
        for option, what in (("--items-file", "items file"), ("--items-url", "items at")):
            for command in (["seed", "--run", "r"], ["digest"]):
                result = wq(*command, option, path, env={"WQ_REDIS_URL": redis_url})
                one_line(result, 2, f"wq: error: {what} '", reason)


def test_the_exporter_stops_at_once_on_a_database_out_of_range(redis_server: RedisServer) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/99"
    result = wq("exporter", "--redis-url", url, "--port", "0", timeout=30)
    one_line(result, 2, f"Redis at {url} has no database 99")


# 11. A Redis Cluster out of reach as a command starts is an outage like any other.


def test_a_cluster_out_of_reach_is_waited_for_then_exit_1() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = wq("status", "--run", "r", "--redis-cluster", "--redis-url", url, "--redis-wait", "1")
    one_line(result, 1, f"Redis at {url} unreachable for", "(limit 1s)")


def test_a_command_waits_for_a_cluster_node_that_starts_later(tmp_path: Path) -> None:
    # The node that comes up is no cluster node: that the command then says so (exit 2) shows
    # it kept trying through the outage rather than giving up while nothing listened.
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    stderr = tmp_path / "stderr"
    argv = wq_argv("status", "--run", "r", "--redis-cluster", "--redis-url", url)
    with stderr.open("w") as sink:
        proc = subprocess.Popen(argv, env=wq_env({"WQ_REDIS_WAIT": "300"}), stderr=sink)
    try:
        wait_until("a retry warning", lambda: "event=redis.retry" in stderr.read_text(), 120)
        server = RedisServer(tmp_path / "node", port=port)
        server.start()
        try:
            assert proc.wait(timeout=120) == 2
        finally:
            server.stop()
    finally:
        proc.kill()
        proc.wait()
    last = stderr.read_text().strip().splitlines()[-1]
    assert last.startswith("wq: error: "), last
    assert "is not a Redis Cluster node" in last, last
