"""Queue operations on one run: lease, complete, fail, release, renew, reap, and counts.

Every state change is one Lua script call, so it is atomic; every call goes through the
Retrying wrapper, so a Redis outage is retried and then raised, never read as "no work".
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.commands.core import Script

from wq.connection import Retrying
from wq.item import Item, split_chunk
from wq.keys import RunKeys
from wq.scripts import Scripts
from wq.status import RunStatus

# One Lua call handles at most this many positions, well under Lua's unpack() limit.
MAX_BATCH = 1000


@dataclass(frozen=True)
class LeaseReply:
    seeded: bool
    now_ms: int
    earliest_deadline_ms: int  # -1 when no item is leased
    pending: int
    in_flight: int
    items: list[Item]

    @property
    def drained(self) -> bool:
        return self.seeded and self.pending == 0 and self.in_flight == 0

    @property
    def expired_leases(self) -> bool:
        return 0 <= self.earliest_deadline_ms <= self.now_ms

    def seconds_to_next_deadline(self) -> float | None:
        if self.earliest_deadline_ms < 0:
            return None
        return max(0.0, (self.earliest_deadline_ms - self.now_ms) / 1000)


@dataclass(frozen=True)
class DeadItem:
    position: int
    error: str
    item: str  # JSON text


class RunQueue:
    def __init__(self, client: redis.Redis, run: str, retrying: Retrying) -> None:
        self.client = client
        self.run = run
        self.keys = RunKeys(run)
        self.scripts = Scripts(client)
        self.call = retrying

    def close(self) -> None:
        self.client.close()

    # The hot path: lease, complete, fail.

    def lease(self, count: int, lease_s: float, token: str) -> LeaseReply:
        k = self.keys
        raw: list[Any] = self.call(
            lambda: self.scripts.lease(
                keys=[k.meta, k.items, k.requeue, k.leases, k.attempts],
                args=[min(count, MAX_BATCH), int(lease_s * 1000), token],
            )
        )
        items = [
            Item(position=int(raw[i]), attempt=int(raw[i + 1]), raw=raw[i + 2])
            for i in range(5, len(raw), 3)
        ]
        return LeaseReply(
            seeded=bool(raw[0]),
            now_ms=int(raw[1]),
            earliest_deadline_ms=int(raw[2]),
            pending=int(raw[3]),
            in_flight=int(raw[4]),
            items=items,
        )

    def complete(self, token: str, worker: str, positions: Sequence[int]) -> list[int]:
        """Record positions as done; returns those the token had lost (not recorded)."""
        k = self.keys
        return self._per_chunk(
            self.scripts.complete, [k.meta, k.leases, k.done], [token, worker], positions
        )

    def fail(self, token: str, position: int, error: str, max_attempts: int) -> str:
        """Returns 'retry', 'dead' or 'stale'."""
        k = self.keys
        result: str = self.call(
            lambda: self.scripts.fail(
                keys=[k.meta, k.requeue, k.leases, k.attempts, k.dead, k.errors],
                args=[token, position, error, max_attempts],
            )
        )
        return result

    # Lease upkeep.

    def renew(self, token: str, lease_s: float, positions: Sequence[int]) -> list[int]:
        """Push the deadlines; returns the positions whose leases were lost."""
        head = [token, int(lease_s * 1000)]
        return self._per_chunk(self.scripts.renew, [self.keys.leases], head, positions)

    def release(self, token: str, positions: Sequence[int]) -> int:
        """Hand items back without using an attempt; returns how many were still held."""
        k = self.keys
        released = 0
        for chunk in _chunks(positions):
            n: int = self.call(
                lambda chunk=chunk: self.scripts.release(  # type: ignore[misc]
                    keys=[k.meta, k.requeue, k.leases, k.attempts], args=[token, *chunk]
                )
            )
            released += int(n)
        return released

    def _per_chunk(
        self, script: Script, keys: list[str], head: list[Any], positions: Sequence[int]
    ) -> list[int]:
        """Run a script that takes positions after `head` and returns positions, in chunks."""
        out: list[int] = []
        for chunk in _chunks(positions):
            args = [*head, *chunk]
            result: list[str] = self.call(lambda args=args: script(keys=keys, args=args))  # type: ignore[misc]
            out.extend(int(p) for p in result)
        return out

    def reap(self, max_attempts: int, limit: int = MAX_BATCH) -> tuple[int, int]:
        """Reclaim expired leases; returns (requeued, dead-lettered)."""
        k = self.keys
        result: list[int] = self.call(
            lambda: self.scripts.reap(
                keys=[k.meta, k.requeue, k.leases, k.attempts, k.dead, k.errors],
                args=[max_attempts, limit],
            )
        )
        return int(result[0]), int(result[1])

    # Reading and admin.

    def is_seeded(self) -> bool:
        return bool(self.call(lambda: self.client.hexists(self.keys.meta, "seeded")))

    def status(self) -> RunStatus:
        k = self.keys

        def snapshot() -> list[Any]:
            pipe = self.client.pipeline(transaction=True)
            pipe.hgetall(k.meta)
            pipe.llen(k.requeue)
            pipe.zcard(k.leases)
            pipe.hlen(k.done)
            pipe.hlen(k.dead)
            pipe.time()
            return pipe.execute()

        meta, requeued, in_flight, done, dead, now = self.call(snapshot)
        total = int(meta.get("total", 0))
        cursor = int(meta.get("cursor", 0))
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        first = meta.get("first_lease_ms")
        elapsed = (now_ms - int(first)) / 1000 if first else None
        return RunStatus(
            run=self.run,
            seeded="seeded" in meta,
            total=total,
            pending=int(requeued) + total - cursor,
            in_flight=int(in_flight),
            done=int(done),
            dead=int(dead),
            retried=int(meta.get("retried", 0)),
            released=int(meta.get("released", 0)),
            executions=int(meta.get("executions", 0)),
            stale=int(meta.get("stale", 0)),
            elapsed_s=elapsed,
            rate=done / elapsed if elapsed and elapsed > 0 else None,
        )

    def dead_items(self) -> list[DeadItem]:
        k = self.keys

        def read() -> list[DeadItem]:
            errors = cast(dict[str, str], self.client.hgetall(k.dead))
            positions = sorted(map(int, errors))
            kind, start, step, chunk = cast(
                list[str], self.client.hmget(k.meta, "kind", "range_start", "range_step", "chunk")
            )
            if kind == "range":
                payloads = [str(int(start) + p * int(step)) for p in positions]
            else:
                size = int(chunk or 1)
                fields = sorted({p // size for p in positions})
                blobs = cast(list[str | None], self.client.hmget(k.items, fields)) if fields else []
                split = {f: split_chunk(b or "") for f, b in zip(fields, blobs, strict=True)}
                payloads = [split[p // size][p % size] for p in positions]
            return [
                DeadItem(position=p, error=errors[str(p)], item=v)
                for p, v in zip(positions, payloads, strict=True)
            ]

        return self.call(read)

    def retry_dead(self) -> int:
        k = self.keys
        n: int = self.call(
            lambda: self.scripts.retry_dead(keys=[k.requeue, k.attempts, k.dead], args=[])
        )
        return int(n)

    def purge(self) -> int:
        """Delete every key of the run; returns how many keys were deleted."""

        def delete() -> int:
            names = list(self.client.scan_iter(match=self.keys.pattern, count=1000))
            return int(self.client.delete(*names)) if names else 0

        return self.call(delete)


def _chunks(positions: Sequence[int]) -> list[Sequence[int]]:
    return [positions[i : i + MAX_BATCH] for i in range(0, len(positions), MAX_BATCH)]
