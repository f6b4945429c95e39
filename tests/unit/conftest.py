"""One real redis-server per test session; each test gets its own run id. Items come from
real servers too: an S3-compatible and a GCS one per session, an HTTP one per test
(tests/unit/servers).

`make test-unit` runs the tests in pytest-xdist workers (the `slow` ones after, one at a time):
a session is then one worker's, with servers of its own on ports the kernel picked, and run
ids carry the worker's pid."""

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.unit.servers import OFFLINE_ENV, GCSServer, HTTPServer, S3Server
from wq.base.options import ConnectionConfig
from wq.store.local_redis import RedisServer
from wq.store.queue import RunQueue, open_queue
from wq.store.scripts import Scripts

_run_ids = itertools.count()
# Every script call the tests make checks its KEYS and ARGV against the script's header.
Scripts.check_all_calls = True
# No SDK in this process or its children looks for credentials beyond the test servers.
os.environ.update(OFFLINE_ENV)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def client(redis_url: str) -> Iterator["redis.Redis"]:
    c = redis.Redis.from_url(redis_url, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def run_id(request: pytest.FixtureRequest) -> str:
    name = request.node.name.split("[")[0][:30].replace("_", "-")
    return f"t{os.getpid()}-{next(_run_ids)}-{name}"


def make_queue(url: str, run: str, budget: float = 5.0) -> RunQueue:
    return open_queue(ConnectionConfig(redis_url=url, run_id=run, redis_wait=budget))


def drain(queue: RunQueue) -> list[Any]:
    """Lease and complete every item the run has now; their values, in lease order."""
    values = []
    while batch := queue.leases.lease(1000, 30, "t").items:
        values.extend(i.value for i in batch)
        queue.leases.complete("t", "w", [i.position for i in batch])
    return values


@pytest.fixture
def queue(redis_url: str, run_id: str) -> Iterator[RunQueue]:
    q = make_queue(redis_url, run_id)
    yield q
    q.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("s3") / "buckets"
    root.mkdir()
    server = S3Server(root)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
    server = GCSServer(tmp_path_factory.mktemp("gcs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    server = HTTPServer()
    server.start()
    yield server
    server.stop()
