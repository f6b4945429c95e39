"""Random command lines to every `wq` command, through the real entry point, against a real
redis-server of its own: whatever the arguments, no traceback, an exit code the command
documents, at most one error line (the last), and a rejection (exit 2) leaves Redis as it was.

The options are each command's real ones (from the click group), their values drawn from what
breaks things: empty, huge, not UTF-8, negative, NaN, paths that do not exist, URLs of every
wrong kind; junk flags and words besides. A few values are bounded where a valid one would only
make the command wait (a Redis wait of hours, a demo sleep of a week), and what blocks by design
is held back: `status --watch` follows a run until it drains, `exporter` serves until stopped
(it only gets arguments ending in --help), and `run --range` is small (its workers process
every item). Each example starts from the same Redis: a drained run, a list to adopt, a string.
"""

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.unit.cli_runner import wq
from tests.unit.conftest import drain, make_queue
from wq.base.item import encode
from wq.cli import all_commands
from wq.seed.seeder import seed_items
from wq.store.local_redis import RedisServer, free_port

COMMANDS: dict[str, click.Command] = all_commands()
# Exit codes a command documents besides 0, 1 and 2: 3 a run drained with dead items
# (--fail-on-dead, `wq run`), 4 a run seeded and then lost (--expect-seeded, workers, the
# autoscaler).
MORE_CODES = {"work": {3, 4}, "run": {3}, "status": {4}, "autoscale": {4}}
# Options left out: they follow a run for as long as it takes.
LEFT_OUT = {("status", "--watch")}

SHARED_RUN = "fz-drained"  # seeded, processed, sealed: every command can read it
FRESH = "{fresh}"  # a run id never seeded: replaced by a new one in each example
NOT_UTF8 = os.fsdecode(b"\xff\xfe")
HUGE = "x" * 100_000

JUNK = st.sampled_from(
    [
        "",
        " ",
        "-",
        "--",
        "x",
        "a b",
        "a\nb",
        "\u00e9\u2713",
        NOT_UTF8,
        HUGE,
        "-1",
        "0",
        "nan",
        "inf",
        "1e309",
        "99999999999999999999",
        "/nonexistent/x",
        "{{ item }}",
        "%s%n",
    ]
) | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
NUMBERS = st.sampled_from(
    ["0", "1", "2", "-1", "0.5", "nan", "-inf", "1e309", "65536", "99999999999999999999", "x", ""]
) | st.integers(-3, 100).map(str)
# Valid values stay small where a big one is a long wait, not a different path.
SHORT_WAITS = st.sampled_from(["0", "0.2", "-1", "nan", "inf", "1e309", "x", ""])
RANGES = st.sampled_from(
    ["0:3", "5:5", "3:0", "0:9:0", "-2:2", "1:x", "", ":", "0:10:-1", "0:99999999999999999999"]
)
ITEM_WORDS = st.lists(JUNK, max_size=3)


def files(root: Path) -> dict[str, Path]:
    """Sources of items, good and bad, in `root`."""
    contents = {
        "items.txt": b"a\nb\n",
        "empty.txt": b"",
        "blank-line.txt": b"a\n\nb\n",
        "not-utf8.txt": b"a\n\xff\n",
        "items.json": b'["a", {"b": 1}]',
        "empty.json": b"[]",
        "not-a-list.json": b'{"a": 1}',
        "values.yaml": b"items: [a, b]\n",
        "bad.yaml": b"- [\n",
        "corrupt.txt.gz": b"not gzip",
    }
    root.mkdir()
    for name, data in contents.items():
        (root / name).write_bytes(data)
    (root / "dir").mkdir()
    return {name: root / name for name in [*contents, "dir"]}


class Fuzz:
    """The redis-server, the files and the values of one test module."""

    def __init__(self, root: Path) -> None:
        (root / "redis").mkdir()
        self.server = RedisServer(root / "redis")
        self.files = files(root / "files")
        self.out = root / "out"
        self.out.mkdir()
        self.fresh = itertools.count()

    @property
    def url(self) -> str:
        return self.server.url

    def paths(self) -> st.SearchStrategy[str]:
        existing = [str(p) for p in self.files.values()]
        odd = [str(self.out / "report.txt"), "/nonexistent/x", "", "x" * 300, "/dev/null"]
        return st.sampled_from([*existing, *odd])

    def urls(self) -> st.SearchStrategy[str]:
        port = self.server.port
        return st.sampled_from(
            [
                self.url,
                f"redis://127.0.0.1:{port}/99",
                f"redis://127.0.0.1:{port}/0?socket_timeout=abc",
                f"redis://127.0.0.1:{port}/0?foo=1",
                f"redis://127.0.0.1:{free_port()}/0",  # nothing listens: transient
                "redis://no-such-host.invalid:6379/0",  # does not resolve: transient
                "redis://a..b:6379/0",
                "http://127.0.0.1:1/",
                "unix:///nonexistent.sock",
                "redis://[::1",
                "",
                NOT_UTF8,
            ]
        )

    def sources(self) -> st.SearchStrategy[str]:
        uris = [p.as_uri() for p in self.files.values()]
        return st.sampled_from(
            [
                *uris,
                "-",
                "ftp://x/y",
                f"http://127.0.0.1:{free_port()}/items.txt",  # refused: transient
                "file:///nonexistent/items.txt",
                str(self.files["dir"]),
                "http://[::1",
                "s3://",
                "gs://bucket",
                "",
            ]
        )

    def globs(self) -> st.SearchStrategy[str]:
        root = self.files["items.txt"].parent
        return st.sampled_from(
            [f"{root}/*.txt", f"{root}/none-*", f"{root}/**.txt", "s3://b/**.json", "s3://", "["]
        )

    def values(self, command: str, option: click.Option) -> st.SearchStrategy[str]:
        name = option.opts[-1]
        named: dict[str, st.SearchStrategy[str]] = {
            "--run": st.sampled_from([FRESH, SHARED_RUN, "", "a b", NOT_UTF8, "x" * 64]),
            "--redis-url": self.urls(),
            "--redis-wait": SHORT_WAITS,
            "--seed-wait": SHORT_WAITS,
            "--demo-sleep": SHORT_WAITS,
            "--poll": SHORT_WAITS,
            "--items-file": self.paths(),
            "--output": self.paths(),
            "--termination-log": self.paths(),
            "--redis-ca-cert": self.paths(),
            "--items-url": self.sources(),
            "--items-from": self.sources(),
            "--list": self.globs(),
            "--range": RANGES,
            "--adopt-list": st.sampled_from(["fz-list", "fz-string", "no-such-list", "", NOT_UTF8]),
            "--python": st.sampled_from(
                ["json:dumps", "json:nope", "no_such_module:f", "os", ":", "", NOT_UTF8]
            ),
            "--job": st.sampled_from(["fz-worker", "", "Bad_Name", NOT_UTF8, "x" * 300]),
            "--workers": st.sampled_from(["1", "2", "0", "-1", "x", "65"]),
        }
        if name in named:
            return named[name] | JUNK if name not in ("--range", "--workers") else named[name]
        if isinstance(option.type, click.Choice):
            return st.sampled_from([str(c) for c in option.type.choices]) | JUNK
        if option.type.name in ("integer", "float"):
            return NUMBERS
        return JUNK

    def command_lines(self) -> st.SearchStrategy[tuple[str, list[str]]]:
        @st.composite
        def draw_line(draw: Any) -> tuple[str, list[str]]:
            name = draw(st.sampled_from(sorted(COMMANDS)))
            command = COMMANDS[name]
            options = [
                p
                for p in command.params
                if isinstance(p, click.Option) and (name, p.opts[-1]) not in LEFT_OUT
            ]
            # A run to work on, which the drawn options may replace.
            takes_run = any("--run" in p.opts for p in command.params) and name != "exporter"
            args = ["--run", draw(st.sampled_from([FRESH, SHARED_RUN]))] if takes_run else []
            for _ in range(draw(st.integers(0, 6))):
                if draw(st.integers(0, 4)) == 0:  # a junk flag or word
                    args.append(draw(st.sampled_from(["--nope", "-x", "--help"]) | JUNK))
                    continue
                option = draw(st.sampled_from(options))
                flag = draw(st.sampled_from([*option.opts, *option.secondary_opts]))
                args += [flag] if option.is_flag else [flag, draw(self.values(name, option))]
            if name in ("seed", "digest", "run"):
                args += draw(ITEM_WORDS)
            elif name == "work" and draw(st.booleans()):
                args += ["--", *draw(ITEM_WORDS)]
            if name == "exporter":
                args.append("--help")  # it serves until stopped
            if name == "run":  # every item of a range is processed: a small one
                args = [a for a in args if a != "--range"]
                if draw(st.booleans()):
                    args += ["--range", draw(RANGES)]
            return name, args

        return draw_line()


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    f = Fuzz(tmp_path_factory.mktemp("fuzz"))
    f.server.start()
    yield f
    f.server.stop()


def reset(fuzz: Fuzz, client: "redis.Redis") -> None:
    client.flushdb()
    queue = make_queue(fuzz.url, SHARED_RUN)
    seed_items(queue, [encode("a"), encode("b")])
    drain(queue)
    queue.close()
    client.rpush("fz-list", "x", "y")
    client.set("fz-string", "v")


def snapshot(client: "redis.Redis") -> tuple[int, dict[bytes, Any]]:
    """DBSIZE, and every key with its value (DUMP) and whether it expires."""
    keys = sorted(client.scan_iter(count=1000))
    return client.dbsize(), {k: (client.dump(k), client.ttl(k) >= 0) for k in keys}


def is_log_line(line: str) -> bool:
    return line.startswith(("ts=", '{"ts":'))


@pytest.fixture(scope="module")
def client(fuzz: Fuzz) -> Iterator["redis.Redis"]:
    c = redis.Redis.from_url(fuzz.url)
    yield c
    c.close()


ENV = {
    "WQ_REDIS_WAIT": "0.5",
    "WQ_SEED_WAIT": "0",
    "WQ_DEMO_SLEEP": "0",
    "WQ_POLL": "0.05",
    # `wq autoscale` finds no Kubernetes API (exit 2), here or in a pod.
    "KUBECONFIG": os.devnull,
    "KUBERNETES_SERVICE_HOST": "",
}


# Bounded for CI (2 loaded cores: about a second per command line); FUZZ_EXAMPLES=500 for a
# deeper look.
@pytest.mark.timeout(900)
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_command_lines_are_one_line_rejections_that_change_nothing(
    fuzz: Fuzz, client: "redis.Redis", data: st.DataObject
) -> None:
    name, args = data.draw(fuzz.command_lines(), label="command line")
    run = f"fz-{os.getpid()}-{next(fuzz.fresh)}"
    argv = [name, *(run if a == FRESH else a for a in args)]
    reset(fuzz, client)
    before = snapshot(client)
    # In a directory of its own: a junk value taken as a relative path (`--output '%s%n'`) is a
    # file the command may rightly write, never into the checkout.
    result = wq(*argv, env={**ENV, "WQ_REDIS_URL": fuzz.url}, timeout=30, cwd=fuzz.out)
    event(f"wq {name} exit {result.returncode}")
    shown = f"wq {argv!r:.2000} exited {result.returncode}:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, shown
    assert result.returncode in {0, 1, 2} | MORE_CODES.get(name, set()), shown
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("wq: ")]
    assert len(errors) <= 1, shown
    if errors:
        assert lines[-1] == errors[0], shown  # the last word, after the logs
    if result.returncode != 0 and name != "run":  # (which draws a progress bar)
        assert all(is_log_line(line) or line in errors for line in lines), shown
    if result.returncode == 2:
        assert errors, shown
        assert snapshot(client) == before, shown
