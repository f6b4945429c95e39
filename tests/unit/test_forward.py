"""wq.reach.forward.LocalForward, the local end of `kubectl wq`'s port-forward, relaying to a
real redis-server (here dialled over TCP; on a cluster through the Kubernetes API, which the
e2e tests cover)."""

import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.polling import wait_until
from wq.reach.forward import LocalForward


def dialer(redis_url: str) -> Callable[[], socket.socket]:
    where = urlsplit(redis_url)
    return lambda: socket.create_connection((where.hostname, where.port))


def connections(client: "redis.Redis[bytes]", name: str) -> int:
    return sum(1 for c in client.client_list() if c["name"] == name)


def test_relays_every_connection_both_ways(redis_url: str, client: "redis.Redis[bytes]") -> None:
    with LocalForward(dialer(redis_url)) as forward:
        url = f"redis://127.0.0.1:{forward.port}/0"
        big = bytes(range(256)) * 8192  # 2 MiB: many reads and writes each way
        results: list[bytes | None] = []

        def one(i: int) -> None:
            with redis.Redis.from_url(url) as through:
                through.set(f"forward:{i}", big + str(i).encode())
                results.append(through.get(f"forward:{i}"))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results) == sorted(big + str(i).encode() for i in range(8))  # type: ignore[type-var]


def test_close_ends_every_relayed_connection(redis_url: str, client: "redis.Redis[bytes]") -> None:
    forward = LocalForward(dialer(redis_url))
    through = redis.Redis(port=forward.port, client_name="via-forward")
    assert through.ping()
    assert connections(client, "via-forward") == 1
    forward.close()
    # Redis sees its end of the relayed connection closed: nothing is left running.
    wait_until(
        "the relayed connection to close", lambda: connections(client, "via-forward") == 0, 10
    )
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", forward.port), timeout=5)
    assert not [t for t in threading.enumerate() if t.name == "wq-forward"]


def test_a_failed_dial_closes_that_connection_only(redis_url: str) -> None:
    calls = []

    def flaky() -> socket.socket:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the pod went away")
        return dialer(redis_url)()

    with LocalForward(flaky) as forward:
        first = redis.Redis(port=forward.port, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.ConnectionError):
            first.ping()
        assert redis.Redis(port=forward.port).ping()
