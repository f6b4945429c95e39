"""Queue operations on one run: seed, lease, complete, fail, release, renew, reap, and counts.

This is the only module that talks to Redis. Every state change is one Lua script call, so
it is atomic; every call goes through the Retrying wrapper, so a Redis outage is retried and
then raised, never read as "no work".
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.crc import key_slot

from wq import layout
from wq.connection import Client, RedisSettings, Retrying
from wq.errors import ConfigError, SourceChanged
from wq.item import Item
from wq.keys import RunKeys, check_run_id
from wq.logs import EventLog
from wq.options import ConnectionConfig
from wq.scripts import Scripts
from wq.status import RunStatus, is_drained

# One Lua call handles at most this many positions, well under Lua's unpack() limit.
MAX_BATCH = 1000
# Operations on a whole run (retry-dead, purge) go in calls of about this many items or keys,
# so that no single call blocks Redis for longer as the run grows.
ADMIN_CHUNK = 500
# Staging writes: fields per HSET, HSETs per round trip, and how long an uncommitted
# staging hash lives.
FIELDS_PER_HSET = 64
HSETS_PER_ROUND_TRIP = 16
STAGING_TTL_S = 3600


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
        return is_drained(self.seeded, self.pending, self.in_flight)

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


# A blip passes within a second (a Redis still starting, a policy agent that has not yet
# admitted a new pod): its retries are logged at debug level, not shown as warnings.
QUIET_RETRY_S = 1.0


def open_queue(config: ConnectionConfig, log: EventLog | None = None) -> "RunQueue":
    """The run's queue on the configured Redis; outages are retried for `redis_wait` seconds,
    with a warning each retry once the outage has lasted QUIET_RETRY_S, when there is a log."""
    run = check_run_id(config.run_id)
    settings = RedisSettings.from_url(
        config.redis_url,
        config.redis_password,
        ca_cert=config.redis_ca_cert or None,
        cluster=config.redis_cluster,
    )

    def warn(waited: float, exc: Exception) -> None:
        if log is not None:
            emit = log.warning if waited >= QUIET_RETRY_S else log.debug
            emit("redis.retry", url=settings.display, waited_s=round(waited, 1), error=str(exc))

    return RunQueue(settings.client(), run, Retrying(settings, config.redis_wait, on_retry=warn))


class RunQueue:
    def __init__(self, client: Client, run: str, retrying: Retrying) -> None:
        self.client = client
        self.run = run
        self.keys = RunKeys(run)
        self.scripts = Scripts(client)
        self.call = retrying

    def close(self) -> None:
        self.client.close()

    # Seeding (the policy is in wq.seeder; these are its Redis calls).

    def stage_items(self, staging: str, items: Sequence[str]) -> str:
        """Fill a staging hash with JSON-encoded items, laid out like the items hash; it
        expires unless committed, in case this seeder dies. Returns the items' digest
        (layout.ItemsDigest), computed on the way."""

        def stage() -> str:
            pipe = self.client.pipeline(transaction=False)
            pipe.unlink(staging)  # a retry after an outage starts afresh
            digest = layout.ItemsDigest()
            self._write_fields(pipe, staging, layout.chunk_fields(items), digest)
            return digest.hexdigest()

        return self.call(stage)

    def stage_fields(self, staging: str, fields: Sequence[tuple[int, str]]) -> None:
        """Add fields of the items hash (layout.chunk_fields) to a staging hash."""
        self.call(
            lambda: self._write_fields(self.client.pipeline(transaction=False), staging, fields)
        )

    def _write_fields(
        self,
        pipe: Any,  # a Pipeline or, on a Redis Cluster, a ClusterPipeline
        staging: str,
        fields: Iterable[tuple[int, str]],
        digest: layout.ItemsDigest | None = None,
    ) -> None:
        batch: dict[int, str] = {}
        for n, (field, blob) in enumerate(fields, start=1):
            if digest is not None:
                digest.add_field(blob)
            batch[field] = blob
            if n % FIELDS_PER_HSET == 0:
                pipe.hset(staging, mapping=batch)
                batch = {}
            if n % (FIELDS_PER_HSET * HSETS_PER_ROUND_TRIP) == 0:
                pipe.expire(staging, STAGING_TTL_S)
                pipe.execute()
        if batch:
            pipe.hset(staging, mapping=batch)
        pipe.expire(staging, STAGING_TTL_S)
        pipe.execute()

    def commit_seed(
        self,
        staging: str,
        total: int,
        kind: str,
        start: int,
        step: int,
        digest: str,
        source: str | None = None,
    ) -> bool:
        """Make a staged run (or a range run) the run, with its seeded marker and the digest
        of its items; False when the run was seeded already (the staging is dropped). With
        `source`, the staging hash is the copy of that plain list, which goes in the same
        call; SourceChanged if its length is not `total` any more."""
        k = self.keys
        keys = [k.meta, k.items, staging]
        args: list[str | int] = [total, kind, start, step, layout.ITEMS_PER_FIELD, digest]
        # On a Redis Cluster a list in another slot cannot join the run's script: its length
        # is checked before the commit and it is unlinked after, not in the same step.
        apart = (
            source is not None
            and isinstance(self.client, RedisCluster)
            and key_slot(source.encode()) != key_slot(k.meta.encode())
        )
        if source is not None and not apart:
            keys.append(source)
            args.append(total)
        if source is not None and apart and self.list_length(source) != total:
            self.drop_staging(staging)
            seeded = -1
        else:
            seeded = int(self.call(lambda: self.scripts.seed(keys=keys, args=args)))
        if seeded < 0:
            raise SourceChanged(
                f"list {source!r} changed length while it was being adopted ({total} items "
                "copied); adopt it again once nothing writes to it"
            )
        if source is not None and apart and seeded == 1:
            self.call(lambda: self.client.unlink(source))
        return seeded == 1

    def drop_staging(self, staging: str) -> None:
        self.call(lambda: self.client.unlink(staging))

    def list_length(self, source: str) -> int:
        """LLEN of a plain list; ConfigError if the key holds something else."""

        def length() -> int:
            try:
                return int(self.client.llen(source))
            except redis.ResponseError as exc:
                if not str(exc).startswith("WRONGTYPE"):
                    raise
                kind = cast(str, self.client.type(source))
                raise ConfigError(f"key {source!r} holds a {kind}, not a list") from None

        return self.call(length)

    def list_window(self, source: str, first: int, count: int) -> list[str]:
        """Items first .. first + count - 1 of a plain list (fewer at its end); ConfigError
        if one is not UTF-8 text."""
        last = first + count - 1
        raw = cast(
            list[bytes],
            self.call(
                lambda: self.client.execute_command(  # type: ignore[no-untyped-call]
                    "LRANGE", source, first, last, NEVER_DECODE=True
                )
            ),
        )
        try:
            return [value.decode() for value in raw]
        except UnicodeDecodeError:
            bad = next(i for i, value in enumerate(raw) if not _is_utf8(value))
            raise ConfigError(
                f"list {source!r} holds an item that is not UTF-8 text (item {first + bad}, "
                "counting from 0)"
            ) from None

    def total(self) -> int:
        value = self.call(lambda: self.client.hget(self.keys.meta, layout.TOTAL))
        return int(value or 0)

    # The hot path: lease, complete, fail.

    def lease(self, count: int, lease_s: float, token: str) -> LeaseReply:
        k = self.keys
        raw: list[Any] = self.call(
            lambda: self.scripts.lease(
                keys=[k.meta, k.items, k.requeue, k.suspects, k.leases, k.attempts, k.solo],
                args=[min(count, MAX_BATCH), int(lease_s * 1000), token],
            )
        )
        if raw[5] != "":  # a range run: its items are computed here, in exact integers
            start, step = int(raw[5]), int(raw[6])
            items = [
                Item(int(raw[i]), int(raw[i + 1]), layout.range_item(start, step, int(raw[i])))
                for i in range(7, len(raw), 3)
            ]
        else:
            items = [
                Item(position=int(raw[i]), attempt=int(raw[i + 1]), raw=raw[i + 2])
                for i in range(7, len(raw), 3)
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
            self.scripts.complete, [k.meta, k.leases, k.done, k.solo], [token, worker], positions
        )

    def fail(self, token: str, position: int, error: str, max_attempts: int) -> str:
        """Returns 'retry', 'dead' or 'stale'."""
        k = self.keys
        result: str = self.call(
            lambda: self.scripts.fail(
                keys=[k.meta, k.requeue, k.leases, k.attempts, k.dead, k.errors, k.solo],
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
                    keys=[k.meta, k.requeue, k.leases, k.solo], args=[token, *chunk]
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
        """Reclaim up to `limit` expired leases; returns (requeued, dead-lettered)."""
        k = self.keys
        keys = [k.meta, k.suspects, k.leases, k.attempts, k.dead, k.errors, k.solo, k.deaths]
        result: list[int] = self.call(
            lambda: self.scripts.reap(
                keys=keys,
                args=[max_attempts, limit],
            )
        )
        return int(result[0]), int(result[1])

    def reap_all(self, max_attempts: int) -> tuple[int, int]:
        """Reclaim every expired lease, in bounded calls; returns (requeued, dead-lettered)."""
        requeued = dead = 0
        while True:
            r, d = self.reap(max_attempts)
            requeued, dead = requeued + r, dead + d
            if r + d == 0:
                return requeued, dead

    # Reading and admin.

    def is_seeded(self) -> bool:
        return bool(self.call(lambda: self.client.hexists(self.keys.meta, layout.SEEDED)))

    def seed_state(self) -> tuple[bool, str | None]:
        """(seeded?, the digest of its items; None if not seeded or seeded without one)."""
        seeded, digest = cast(
            list[str | None],
            self.call(lambda: self.client.hmget(self.keys.meta, layout.SEEDED, layout.DIGEST)),
        )
        return seeded is not None, digest

    def status(self) -> RunStatus:
        k = self.keys
        keys = [k.meta, k.requeue, k.suspects, k.leases, k.done, k.dead]
        raw: list[Any] = self.call(lambda: self.scripts.status(keys=keys, args=[]))
        flat, requeued, suspects, in_flight, done, dead, now_ms = raw
        meta = dict(zip(flat[::2], flat[1::2], strict=True))
        total = int(meta.get(layout.TOTAL, 0))
        cursor = int(meta.get(layout.CURSOR, 0))
        first = meta.get(layout.FIRST_LEASE_MS)
        elapsed = (int(now_ms) - int(first)) / 1000 if first else None
        return RunStatus(
            run=self.run,
            seeded=layout.SEEDED in meta,
            total=total,
            pending=int(requeued) + int(suspects) + total - cursor,
            in_flight=int(in_flight),
            done=int(done),
            dead=int(dead),
            retried=int(meta.get(layout.RETRIED, 0)),
            released=int(meta.get(layout.RELEASED, 0)),
            executions=int(meta.get(layout.EXECUTIONS, 0)),
            stale=int(meta.get(layout.STALE, 0)),
            elapsed_s=elapsed,
            rate=done / elapsed if elapsed and elapsed > 0 else None,
            digest=meta.get(layout.DIGEST),
        )

    def dead_items(self) -> list[DeadItem]:
        k = self.keys

        def read() -> list[DeadItem]:
            errors = cast(dict[str, str], self.client.hgetall(k.dead))
            positions = sorted(map(int, errors))
            kind, start, step, chunk = cast(
                list[str],
                self.client.hmget(
                    k.meta, layout.KIND, layout.RANGE_START, layout.RANGE_STEP, layout.CHUNK
                ),
            )
            if kind == layout.KIND_RANGE:
                payloads = [layout.range_item(int(start), int(step), p) for p in positions]
            else:
                size = int(chunk or 1)
                where = [layout.field_of(p, size) for p in positions]
                fields = sorted({f for f, _ in where})
                blobs = cast(list[str | None], self.client.hmget(k.items, fields)) if fields else []
                split = {f: layout.split_chunk(b or "") for f, b in zip(fields, blobs, strict=True)}
                payloads = [split[f][i] for f, i in where]
            return [
                DeadItem(position=p, error=errors[str(p)], item=v)
                for p, v in zip(positions, payloads, strict=True)
            ]

        return self.call(read)

    def retry_dead(self, chunk: int = ADMIN_CHUNK) -> int:
        """Give every dead item a fresh set of attempts, about `chunk` items per call; returns
        how many were requeued. Safe while workers run: items that die meanwhile may be
        requeued too, and the walk ends even if they keep dying."""
        cursor, requeued = "0", 0
        while True:
            cursor, n = self.retry_dead_chunk(cursor, chunk)
            requeued += n
            if cursor == "0":
                return requeued

    def retry_dead_chunk(self, cursor: str, count: int) -> tuple[str, int]:
        """One call of retry-dead: (next cursor, '0' when done; items requeued)."""
        k = self.keys
        result: list[Any] = self.call(
            lambda: self.scripts.retry_dead(
                keys=[k.requeue, k.attempts, k.dead], args=[cursor, count]
            )
        )
        return str(result[0]), int(result[1])

    def purge(self, chunk: int = ADMIN_CHUNK) -> int:
        """Delete every key of the run; returns how many keys were deleted.

        UNLINK, not DEL: Redis frees big values in the background (DEL of a 1M-item run held
        it for 0.1-0.4 s). The run's named keys go in one call, so a worker sees all of the
        run or none of it; other keys (staging hashes) follow, SCAN-ing `chunk` names a call.
        """
        deleted: int = self.call(lambda: int(self.client.unlink(*self.keys.named)))
        cursor = 0
        while True:
            cursor, names = self.call(lambda cursor=cursor: self._scan_run(cursor, chunk))  # type: ignore[misc]
            if names:
                deleted += self.call(lambda names=names: int(self.client.unlink(*names)))  # type: ignore[misc]
            if cursor == 0:
                return deleted

    def _scan_run(self, cursor: int, count: int) -> tuple[int, list[str]]:
        if isinstance(self.client, RedisCluster):
            # Only the node that serves the run's slot can hold its keys. The cluster client
            # answers SCAN with its cursors by node: here, one.
            node = self.client.get_node_from_key(self.keys.meta)  # type: ignore[no-untyped-call]
            cursors, names = cast(
                tuple[dict[str, int], list[str]],
                self.client.scan(cursor, match=self.keys.pattern, count=count, target_nodes=node),
            )
            return int(next(iter(cursors.values()))), list(names)
        found = cast(
            tuple[int, list[str]],
            self.client.scan(cursor, match=self.keys.pattern, count=count),
        )
        return int(found[0]), list(found[1])


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _chunks(positions: Sequence[int]) -> list[Sequence[int]]:
    return [positions[i : i + MAX_BATCH] for i in range(0, len(positions), MAX_BATCH)]
