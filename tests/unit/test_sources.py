"""Items streamed from where they live, through the real `wq` entry point: every format from
file://, http:// (a real HTTP server), s3:// (a real S3-compatible server) and gs:// (a GCS
JSON API server), standard input, object listings; digests equal to `wq digest`'s; a source
failing half-way seeds nothing; no credentials is one line and exit 2; memory stays flat
whatever the number of items."""

import gzip
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.unit.cli_runner import wq, wq_argv, wq_env
from tests.unit.servers import GCSServer, HTTPServer, S3Server, drop_after, status

VALUES: list[Any] = ["apple", "banana split", "\u00e9clair \u2713", {"src": "a.png"}, 7, 2.5, None]
STRINGS = ["apple", "banana split", "\u00e9clair \u2713", '{"not": "parsed"}', "  padded  "]


def as_format(values: list[Any], fmt: str) -> bytes:
    if fmt == "lines":
        return "".join(f"{v}\n" for v in values).encode()
    if fmt == "jsonl":
        return "".join(json.dumps(v) + "\n\n" for v in values).encode()  # blank lines skipped
    if fmt == "json":
        return json.dumps(values, indent=1).encode()
    lines = [f"- {json.dumps(v)}" for v in values]  # YAML is a superset of JSON
    return ("# items\n" + "\n".join(lines) + "\n").encode()


FORMATS = {"lines": ".txt", "jsonl": ".jsonl", "json": ".json", "yaml": ".yaml"}


def values_for(fmt: str) -> list[Any]:
    return STRINGS if fmt == "lines" else VALUES


def env_of(redis_url: str, run_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"WQ_REDIS_URL": redis_url, "WQ_RUN": run_id, **(extra or {})}


def report(redis_url: str, run_id: str) -> list[Any]:
    """The run's items as workers get them, in order, read with `wq report`."""
    out = wq("report", env=env_of(redis_url, run_id))
    assert out.returncode == 0, out.stderr
    return [json.loads(line)["item"] for line in out.stdout.splitlines()]


def seed_and_check(
    redis_url: str,
    run_id: str,
    args: list[str],
    expected: list[Any],
    env: dict[str, str] | None = None,
    stdin: str = "",
) -> None:
    """Seed with `args`; the run holds `expected`, and its digest is `wq digest args`."""
    seeded = wq("seed", *args, env=env_of(redis_url, run_id, env), stdin=stdin)
    assert seeded.returncode == 0, seeded.stderr
    offline = wq("digest", *args, env=env, stdin=stdin)
    assert offline.returncode == 0, offline.stderr
    status = json.loads(wq("status", "--json", env=env_of(redis_url, run_id)).stdout)
    assert status["digest"] == offline.stdout.strip()
    assert status["total"] == len(expected)
    assert report(redis_url, run_id) == expected


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_from_a_file_url_gives_the_items_files_digest(
    redis_url: str, run_id: str, tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"items{FORMATS[fmt]}"
    path.write_bytes(as_format(values_for(fmt), fmt))
    seed_and_check(redis_url, run_id, ["--items-url", path.as_uri()], values_for(fmt))
    # The same bytes as an items file (the chart's ConfigMap path): the same digest.
    assert (
        wq("digest", "--items-file", str(path)).stdout
        == wq("digest", "--items-url", path.as_uri()).stdout
    )


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_over_http(
    redis_url: str, run_id: str, http_server: HTTPServer, fmt: str
) -> None:
    http_server.files[f"/data/items{FORMATS[fmt]}"] = as_format(values_for(fmt), fmt)
    url = f"{http_server.url}/data/items{FORMATS[fmt]}"
    seed_and_check(redis_url, run_id, ["--items-url", url], values_for(fmt))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_from_s3(redis_url: str, run_id: str, s3_server: S3Server, fmt: str) -> None:
    url = s3_server.put("items", f"{run_id}/items{FORMATS[fmt]}", as_format(values_for(fmt), fmt))
    seed_and_check(redis_url, run_id, ["--items-url", url], values_for(fmt), s3_server.env())


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_from_gcs(
    redis_url: str, run_id: str, gcs_server: GCSServer, fmt: str
) -> None:
    """gs:// through gcsfs against a GCS JSON API server (fake-gcs-server)."""
    url = gcs_server.put("items", f"{run_id}/items{FORMATS[fmt]}", as_format(values_for(fmt), fmt))
    seed_and_check(redis_url, run_id, ["--items-url", url], values_for(fmt), gcs_server.env())


def test_a_gcs_listing_and_a_missing_object(
    redis_url: str, run_id: str, gcs_server: GCSServer
) -> None:
    for name in ["b.jpg", "a.jpg", "notes.txt", "sub/c.jpg"]:
        gcs_server.put("photos", f"{run_id}/{name}", b"x")
    expected = [f"gs://photos/{run_id}/{n}" for n in ["a.jpg", "b.jpg"]]
    glob = f"gs://photos/{run_id}/*.jpg"
    seed_and_check(redis_url, run_id, ["--list", glob], expected, gcs_server.env())
    for url in (f"gs://photos/{run_id}/missing.txt", "gs://no-such-bucket/items.txt"):
        result = wq("seed", "--items-url", url, env=env_of(redis_url, run_id, gcs_server.env()))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "does not exist" in result.stderr


def test_gcs_access_denied_is_one_line_and_exit_2(
    redis_url: str, run_id: str, http_server: HTTPServer
) -> None:
    """fake-gcs-server checks no permissions: a refusal comes from a local HTTP server that
    answers gcsfs' calls with 403, as GCS does for a private object."""
    env = {"STORAGE_EMULATOR_HOST": http_server.url}
    for path in ("/storage/v1/b/private/o", "/storage/v1/b/private/o/items.txt"):
        http_server.routes[path] = status(403)  # the object and the listing gcsfs falls back on
    result = wq("seed", "--items-url", "gs://private/items.txt", env=env_of(redis_url, run_id, env))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "access denied" in result.stderr
    assert "GOOGLE_APPLICATION_CREDENTIALS" in result.stderr


def test_compressed_objects_are_undone_and_format_flag_wins(
    redis_url: str, run_id: str, s3_server: S3Server
) -> None:
    data = gzip.compress(as_format(VALUES, "jsonl"))
    url = s3_server.put("items", f"{run_id}/export.gz", data)  # no format in the name
    args = ["--items-url", url, "--format", "jsonl"]
    seed_and_check(redis_url, run_id, args, VALUES, s3_server.env())


@pytest.mark.parametrize("fmt", ["lines", "jsonl", "json", "yaml"])
def test_standard_input(redis_url: str, run_id: str, fmt: str) -> None:
    text = as_format(values_for(fmt), fmt).decode()
    args = ["--items-from", "-"] + ([] if fmt == "lines" else ["--format", fmt])
    seed_and_check(redis_url, run_id, args, values_for(fmt), stdin=text)


def test_a_listing_gives_one_item_per_object_in_sorted_order(
    redis_url: str, run_id: str, s3_server: S3Server, tmp_path: Path
) -> None:
    for name in ["b.png", "a.png", "c.txt", "sub/d.png", "a2.png"]:
        s3_server.put("photos", f"{run_id}/{name}", b"x")
    glob = f"s3://photos/{run_id}/*.png"
    expected = [f"s3://photos/{run_id}/{n}" for n in ["a.png", "a2.png", "b.png"]]
    seed_and_check(redis_url, run_id, ["--list", glob], expected, s3_server.env())

    for name in ["z.csv", "y.csv", "x.txt"]:
        (tmp_path / name).write_text("x")
    (tmp_path / "dir.csv").mkdir()  # a directory is no object
    local = [f"file://{tmp_path / n}" for n in ["y.csv", "z.csv"]]
    seed_and_check(redis_url, f"{run_id}-local", ["--list", f"{tmp_path}/*.csv"], local)


def test_no_credentials_is_one_line_and_exit_2(
    redis_url: str, run_id: str, s3_server: S3Server
) -> None:
    url = s3_server.put("items", f"{run_id}/items.txt", b"a\n")
    for args in (["--items-url", url], ["--list", f"s3://items/{run_id}/*"]):
        for env, words in (
            (s3_server.env(credentials=False), "no credentials found"),
            ({**s3_server.env(), "AWS_SECRET_ACCESS_KEY": "wrong"}, "access denied"),
        ):
            result = wq("seed", *args, env=env_of(redis_url, run_id, env))
            assert result.returncode == 2, result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert words in lines[0]
            assert "AWS_ACCESS_KEY_ID" in lines[0]
    status = json.loads(wq("status", "--json", env=env_of(redis_url, run_id)).stdout)
    assert status["seeded"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--items-url", "ftp://host/items.txt"], "scheme 'ftp' is not one wq reads"),
        (["--items-url", "file:///nonexistent/items.txt"], "does not exist"),
        (["--items-url", "s3://no-such-bucket/items.txt"], "does not exist"),
        (["--items-url", "http://127.0.0.1:{port}/missing.txt"], "does not exist"),
        (["--items-from", "-", "--format", "json"], "is not valid JSON"),
        (["--items-url", "-", "--list", "x"], "exactly one way"),
    ],
)
def test_bad_sources_are_one_line_exit_2(
    redis_url: str,
    run_id: str,
    s3_server: S3Server,
    http_server: HTTPServer,
    args: list[str],
    message: str,
) -> None:
    args = [a.replace("{port}", str(http_server.httpd.server_address[1])) for a in args]
    result = wq("seed", *args, env=env_of(redis_url, run_id, s3_server.env()), stdin="[1,")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_a_source_failing_half_way_seeds_nothing_and_a_retry_seeds_once(
    redis_url: str, run_id: str, http_server: HTTPServer, client: "redis.Redis"
) -> None:
    body = "".join(f"item-{n}\n" for n in range(200_000)).encode()
    http_server.routes["/items.txt"] = drop_after(body, 150_000)
    env = env_of(redis_url, run_id)
    url = f"{http_server.url}/items.txt"
    failed = wq("seed", "--items-url", url, env=env)
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.count("\n") == 1, failed.stderr
    assert "nothing was seeded" in failed.stderr
    status = json.loads(wq("status", "--json", env=env).stdout)
    assert (status["seeded"], status["total"]) == (False, 0)
    assert list(client.scan_iter(f"wq:{{{run_id}}}:*")) == []  # its staging hash is gone

    del http_server.routes["/items.txt"]
    http_server.files["/items.txt"] = body
    for outcome in ("outcome=seeded", "outcome=already_seeded"):
        again = wq("seed", "--items-url", url, env=env)
        assert again.returncode == 0, again.stderr
        assert outcome in again.stderr
    status = json.loads(wq("status", "--json", env=env).stdout)
    assert (status["seeded"], status["total"]) == (True, 200_000)
    assert status["digest"] == wq("digest", "--items-url", url).stdout.strip()


def seed_peak_rss_kib(redis_url: str, run: str, url: str) -> int:
    """Peak resident memory of one `wq seed --items-url` process (its own, from wait4)."""
    proc = subprocess.Popen(
        wq_argv("seed", "--items-url", url),
        env=wq_env(env_of(redis_url, run)),
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return int(usage.ru_maxrss)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_seeding_a_million_items_streams_in_bounded_memory(
    redis_url: str, run_id: str, tmp_path: Path, client: "redis.Redis"
) -> None:
    peaks = {}
    for n in (10_000, 1_000_000):
        path = tmp_path / f"{n}.txt"
        with path.open("w") as f:
            f.writelines(f"https://example.org/items/{k:09d}.png\n" for k in range(n))
        run = f"{run_id}-{n}"
        peaks[n] = seed_peak_rss_kib(redis_url, run, path.as_uri())
        status = json.loads(wq("status", "--json", env=env_of(redis_url, run)).stdout)
        assert status["total"] == n
        path.unlink()
        assert wq("purge", "--yes", env=env_of(redis_url, run)).returncode == 0
    # A hundred times the items (about 45 MB more text), the same memory, give or take.
    assert peaks[1_000_000] - peaks[10_000] < 16 * 1024, peaks
