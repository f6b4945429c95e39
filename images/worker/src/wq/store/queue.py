"""Queue operations on one run: seed, lease, complete, fail, release, renew, reap, and counts.

This is the only module that talks to Redis about a run (wq.store.survey looks at a whole Redis for
the exporter). Every state change is one Lua script call, so it is atomic; every call goes
through the Retrying wrapper, so a Redis outage is retried and then raised, never read as "no
work".
"""

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.crc import key_slot

from wq.base.errors import ConfigError, RunFormatError, SourceChanged
from wq.base.item import Item
from wq.base.logs import EventLog
from wq.base.options import ConnectionConfig
from wq.base.run_id import check_run_id
from wq.base.status import RunStatus, Scaling, is_drained
from wq.store import layout
from wq.store.connection import Client, RedisSettings, Retrying
from wq.store.keys import RunKeys
from wq.store.scripts import Scripts

# One Lua call handles at most this many positions, well under Lua's unpack() limit.
MAX_BATCH = 1000
# Outputs sent in one completion call, about: beyond, the positions go in further calls.
OUTPUT_BYTES_PER_CALL = 1 << 20
# Positions read per call by window(): 32 fields of the items hash and of the ledger.
WINDOW = 32 * layout.RECORDS_PER_FIELD
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
    open: bool = False  # the run takes appends: drained or not, it is not finished
    seeder_ms: int = -1  # when the progressive seeder of an open run last added items

    @property
    def drained(self) -> bool:
        return is_drained(self.seeded, self.pending, self.in_flight, self.open)

    @property
    def expired_leases(self) -> bool:
        return 0 <= self.earliest_deadline_ms <= self.now_ms

    def seconds_to_next_deadline(self) -> float | None:
        if self.earliest_deadline_ms < 0:
            return None
        return max(0.0, (self.earliest_deadline_ms - self.now_ms) / 1000)


class OpenState(NamedTuple):
    seeded: bool
    open: bool  # takes appends
    total: int  # items in the run: the position the next append starts at
    chunk: int  # items per field of the items hash


class Finished(NamedTuple):
    """A successful attempt whose attempt number is not known to the caller (complete.lua
    counts it): for callers other than the worker, and tests."""

    position: int
    duration_ms: int = layout.UNKNOWN_MS
    output: str | None = None  # JSON text; None: the handler gave none


class Completions:
    """Successful attempts under one lease token, to record in one go (RunQueue.complete):
    parallel lists, which a worker makes for a whole batch at once; packing them for
    complete.lua (layout.ATTEMPT_FORMAT per item) happens once per call, in C loops."""

    def __init__(
        self,
        positions: list[int],
        attempts: list[int],
        durations_ms: list[int],  # out of range (negative, UNKNOWN_MS or more): not known
        outputs: dict[int, str],  # position -> JSON text, for those that have one
        attempts_known: bool = True,  # False: complete.lua counts them (attempts ignored)
    ) -> None:
        self.positions = positions
        self.attempts = attempts
        self.durations_ms = durations_ms
        self.outputs = outputs
        self.attempts_known = attempts_known

    @classmethod
    def empty(cls) -> "Completions":
        """A batch to append to, item by item (the worker does, as items finish)."""
        return cls([], [], [], {})

    def __len__(self) -> int:
        return len(self.positions)

    def packed(self) -> bytes:
        """Attempt (2 bytes) and duration in ms (4 bytes) per position, big-endian,
        interleaved by extended-slice assignment rather than a Python loop."""
        n = len(self.positions)
        try:
            attempts = struct.pack(f">{n}H", *self.attempts)
            durations = struct.pack(f">{n}I", *self.durations_ms)
        except struct.error:  # out of range: a duration not known, or absurd
            attempts = struct.pack(f">{n}H", *(min(a, _MAX_ATTEMPT) for a in self.attempts))
            durations = struct.pack(f">{n}I", *map(_ms, self.durations_ms))
        out = bytearray(6 * n)
        for i in range(2):
            out[i::6] = attempts[i::2]
        for i in range(4):
            out[2 + i :: 6] = durations[i::4]
        return bytes(out)

    @classmethod
    def of(cls, finished: Iterable[Finished | int]) -> "Completions":
        """Bare positions or Finished tuples: complete.lua counts their attempts."""
        done = [f if isinstance(f, Finished) else Finished(f) for f in finished]
        return cls(
            positions=[f.position for f in done],
            attempts=[0] * len(done),
            durations_ms=[f.duration_ms for f in done],
            outputs={f.position: f.output for f in done if f.output is not None},
            attempts_known=False,
        )

    def calls(self) -> Iterator["Completions"]:
        """Parts of at most MAX_BATCH positions and about OUTPUT_BYTES_PER_CALL characters of
        outputs each (one complete.lua call each)."""
        sizes = {p: len(o) for p, o in self.outputs.items()}
        if len(self.positions) <= MAX_BATCH and sum(sizes.values()) <= OUTPUT_BYTES_PER_CALL:
            yield self
            return
        start = size = 0
        for i, p in enumerate(self.positions):
            grow = sizes.get(p, 0)
            if i > start and (i - start >= MAX_BATCH or size + grow > OUTPUT_BYTES_PER_CALL):
                yield self._part(start, i)
                start, size = i, 0
            size += grow
        yield self._part(start, len(self.positions))

    def _part(self, start: int, end: int) -> "Completions":
        positions = self.positions[start:end]
        return Completions(
            positions,
            self.attempts[start:end],
            self.durations_ms[start:end],
            {p: self.outputs[p] for p in positions if p in self.outputs},
            self.attempts_known,
        )


_MAX_ATTEMPT = 0xFFFF


@dataclass(frozen=True)
class Window:
    """Consecutive positions of a run, read in one step (RunQueue.window)."""

    first: int
    total: int  # of the run
    seeded: bool
    items: list[str]  # JSON text, one per position of the window
    records: list[layout.Record | None]  # ledger records; None: pending or in flight
    attempts: list[int]  # charged so far (failures, deaths of a worker running it alone)
    errors: list[str | None]  # last error of a failed attempt
    dead: list[str | None]  # the error of a dead item, from the dead-letter hash


# A blip passes within a second (a Redis still starting, a policy agent that has not yet
# admitted a new pod): its retries are logged at debug level, not shown as warnings.
QUIET_RETRY_S = 1.0


def open_queue(config: ConnectionConfig, log: EventLog | None = None) -> "RunQueue":
    """The run's queue on the configured Redis; outages are retried for `redis_wait` seconds,
    with a warning each retry once the outage has lasted QUIET_RETRY_S, when there is a log."""
    run = check_run_id(config.run_id)
    settings = RedisSettings.of(config)

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

    # Seeding (the policy is in wq.seed.seeder; these are its Redis calls).

    def stage_items(self, staging: str, items: Sequence[str], chunk: int) -> str:
        """Fill a staging hash with JSON-encoded items, laid out like the items hash with
        `chunk` items per field; it expires unless committed, in case this seeder dies.
        Returns the items' digest (layout.ItemsDigest), computed on the way."""

        def stage() -> str:
            pipe = self.client.pipeline(transaction=False)
            pipe.unlink(staging)  # a retry after an outage starts afresh
            digest = layout.ItemsDigest()
            self._write_fields(pipe, staging, layout.chunk_fields(items, chunk), digest)
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
        open_run: bool = False,
        chunk: int = layout.ITEMS_PER_FIELD,
    ) -> bool:
        """Make a staged run (or a range run) the run, with its seeded marker and the digest
        of its items; False when the run was seeded already (the staging is dropped). With
        `source`, the staging hash is the copy of that plain list, which goes in the same
        call; SourceChanged if its length is not `total` any more. An open run takes appends
        until sealed. `chunk`: items per field of the staged items hash."""
        k = self.keys
        keys = [k.meta, k.items, staging]
        args: list[str | int] = [
            total,
            kind,
            start,
            step,
            chunk,
            digest,
            layout.OPEN_FORMAT if open_run else layout.STORAGE_FORMAT,
            1 if open_run else 0,
        ]
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
        first = 9  # of the leased items, in the reply
        if raw[5] != "":  # a range run: its items are computed here, in exact integers
            start, step = int(raw[5]), int(raw[6])
            items = [
                Item(int(raw[i]), int(raw[i + 1]), layout.range_item(start, step, int(raw[i])))
                for i in range(first, len(raw), 3)
            ]
        else:
            items = [
                Item(position=int(raw[i]), attempt=int(raw[i + 1]), raw=raw[i + 2])
                for i in range(first, len(raw), 3)
            ]
        return LeaseReply(
            seeded=bool(raw[0]),
            now_ms=int(raw[1]),
            earliest_deadline_ms=int(raw[2]),
            pending=int(raw[3]),
            in_flight=int(raw[4]),
            items=items,
            open=bool(int(raw[7])),
            seeder_ms=int(raw[8]),
        )

    def complete(
        self, token: str, worker: str, done: Completions | Sequence[Finished | int]
    ) -> list[int]:
        """Record items as done, each with its ledger record and output (a bare position: no
        duration known, no output); returns the positions the token had lost (nothing of them
        is recorded)."""
        k = self.keys
        keys = [k.meta, k.leases, k.ledger, k.outputs, k.attempts, k.workers, k.solo, k.durations]
        batch = done if isinstance(done, Completions) else Completions.of(done)
        stale: list[int] = []
        for part in batch.calls():
            args: list[Any] = [
                token,
                worker,
                "1" if part.attempts_known else "0",
                part.packed(),
                len(part.positions),
                *part.positions,
            ]
            for position, output in part.outputs.items():
                args += (position, output)
            result: list[str] = self.call(
                lambda args=args: self.scripts.complete(keys=keys, args=args)  # type: ignore[misc]
            )
            stale.extend(int(p) for p in result)
        return stale

    def fail(
        self,
        token: str,
        position: int,
        error: str,
        max_attempts: int,
        worker: str = "",
        duration_ms: int = layout.UNKNOWN_MS,
    ) -> str:
        """Returns 'retry', 'dead' or 'stale'. A dead item's ledger record names the worker
        (if given) and how long its last attempt took."""
        k = self.keys
        keys = [
            k.meta,
            k.requeue,
            k.leases,
            k.attempts,
            k.dead,
            k.errors,
            k.solo,
            k.ledger,
            k.workers,
            k.durations,
        ]
        result: str = self.call(
            lambda: self.scripts.fail(
                keys=keys,
                args=[token, position, error, max_attempts, worker, _ms(duration_ms)],
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
        keys = [
            k.meta,
            k.suspects,
            k.leases,
            k.attempts,
            k.dead,
            k.errors,
            k.solo,
            k.deaths,
            k.ledger,
        ]
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
        """Whether the run is seeded; RunFormatError if another wq version seeded it."""
        return self.seed_state()[0]

    def seed_state(self) -> tuple[bool, str | None]:
        """(seeded?, the digest of the items it was seeded with; None if not seeded or seeded
        without one); RunFormatError if another wq version seeded it."""
        fields = (layout.SEEDED, layout.DIGEST, layout.FORMAT, layout.OPEN_DIGEST)
        seeded, digest, fmt, open_digest = cast(
            list[str | None], self.call(lambda: self.client.hmget(self.keys.meta, *fields))
        )
        self._check_format(seeded is not None, fmt)
        return seeded is not None, open_digest or digest

    # Open runs (the policy is in wq.seed.open_runs).

    def open_state(self) -> "OpenState":
        """What an appender needs to know of the run."""
        fields = (layout.SEEDED, layout.OPEN, layout.TOTAL, layout.FORMAT, layout.CHUNK)
        seeded, is_open, total, fmt, chunk = cast(
            list[str | None], self.call(lambda: self.client.hmget(self.keys.meta, *fields))
        )
        self._check_format(seeded is not None, fmt)
        return OpenState(
            seeded=seeded is not None,
            open=is_open is not None,
            total=int(total or 0),
            chunk=int(chunk or layout.ITEMS_PER_FIELD),
        )

    def append(
        self,
        total: int,
        fields: Sequence[tuple[int, str]],
        count: int,
        progress: tuple[int, str] | None = None,
    ) -> int:
        """Add `count` items, laid out as fields for a run of `total` items
        (layout.chunk_fields(items, chunk, first=total)), in one step; returns the new total, or
        append.lua's refusal: -1 the total changed, -2 sealed, -3 not seeded, -4 the progress
        changed. `progress`: a progressive seeder's (items of its source in before these,
        digest of its source's items once these are in)."""
        k = self.keys
        args: list[str | int] = [total, count, *(progress or ("", ""))]
        for field, joined in fields:
            args += [field, joined]
        return int(self.call(lambda: self.scripts.append(keys=[k.meta, k.items], args=args)))

    def touch_seeder(self) -> None:
        """Mark the run's progressive seeder alive now (Redis time), as each of its appends
        does, for the workers that wait on the open run."""

        def touch() -> None:
            seconds, micros = self.client.time()
            self.client.hset(self.keys.meta, layout.SEEDER_MS, seconds * 1000 + micros // 1000)

        self.call(touch)

    def progress(self) -> tuple[int, str | None]:
        """(items in, their digest) of the run's progressive seeder's source; (0, None) if none
        is recorded."""
        fields = (layout.PROGRESS, layout.PROGRESS_DIGEST)
        count, digest = cast(
            list[str | None], self.call(lambda: self.client.hmget(self.keys.meta, *fields))
        )
        return int(count or 0), digest

    def seal(self) -> tuple[int, int, str | None, bool]:
        """Close an open run to appends: (1 sealed now, 0 sealed already, -1 not seeded;
        its total; its digest, None until recorded; whether it was ever open)."""
        outcome, total, digest, was_open = self.call(
            lambda: self.scripts.seal(keys=[self.keys.meta])
        )
        return int(outcome), int(total), digest or None, bool(int(was_open))

    def item_fields(self, first: int, count: int) -> list[str]:
        """Fields first .. first + count - 1 of the items hash ('' for one that is absent)."""
        fields = list(range(first, first + count))
        values = cast(
            list[str | None], self.call(lambda: self.client.hmget(self.keys.items, fields))
        )
        return [v or "" for v in values]

    def record_digest(self, digest: str) -> None:
        """Record the digest of a sealed run's items (they change no more)."""
        self.call(lambda: self.client.hset(self.keys.meta, layout.DIGEST, digest))

    def _check_format(self, seeded: bool, fmt: str | None) -> None:
        if seeded and fmt not in layout.READABLE_FORMATS:
            raise RunFormatError(self.run, fmt, layout.STORAGE_FORMAT)

    def status(self) -> RunStatus:
        return self.metrics()[0]

    def metrics(self) -> tuple[RunStatus, layout.Durations]:
        """The run's counts and its durations histogram, in one atomic read."""
        k = self.keys
        keys = [k.meta, k.requeue, k.suspects, k.leases, k.dead, k.durations]
        raw: list[Any] = self.call(lambda: self.scripts.status(keys=keys, args=[]))
        flat, requeued, suspects, in_flight, dead, now_ms, ttl_ms, durations = raw
        meta = dict(zip(flat[::2], flat[1::2], strict=True))
        self._check_format(layout.SEEDED in meta, meta.get(layout.FORMAT))
        total = int(meta.get(layout.TOTAL, 0))
        cursor = int(meta.get(layout.CURSOR, 0))
        first = meta.get(layout.FIRST_LEASE_MS)
        elapsed = (int(now_ms) - int(first)) / 1000 if first else None
        done = int(meta.get(layout.DONE_COUNT, 0))
        status = RunStatus(
            run=self.run,
            seeded=layout.SEEDED in meta,
            total=total,
            pending=int(requeued) + int(suspects) + total - cursor,
            in_flight=int(in_flight),
            done=done,
            dead=int(dead),
            retried=int(meta.get(layout.RETRIED, 0)),
            released=int(meta.get(layout.RELEASED, 0)),
            executions=int(meta.get(layout.EXECUTIONS, 0)),
            stale=int(meta.get(layout.STALE, 0)),
            elapsed_s=elapsed,
            rate=done / elapsed if elapsed and elapsed > 0 else None,
            digest=meta.get(layout.DIGEST),
            expires_in_s=int(ttl_ms) / 1000 if int(ttl_ms) >= 0 else None,
            open=layout.OPEN in meta,
        )
        return status, layout.Durations.of(dict(zip(durations[::2], durations[1::2], strict=True)))

    def has_keys(self) -> bool:
        """Whether any key of the run but its meta hash exists: when the meta hash is gone, a
        sign that some keys were evicted (purge unlinks them all in one call, and a drained
        run's keys expire at the same moment)."""
        others = self.keys.named[1:]
        return bool(self.call(lambda: self.client.exists(*others)))

    def record_scaling(self, job: str, current: int, target: int, reason: str) -> bool:
        """Record the autoscaler's decision on the worker Job (layout: the scaling hash);
        False, and nothing written, if the run is not seeded."""
        k = self.keys
        args: list[str | int] = [job, current, target, reason]
        return bool(self.call(lambda: self.scripts.scaling(keys=[k.meta, k.scaling], args=args)))

    def scaling(self) -> Scaling | None:
        """The autoscaler's last decision, if anything autoscales the run."""
        values = cast(
            list[str | None],
            self.call(lambda: self.client.hmget(self.keys.scaling, list(layout.SCALING_FIELDS))),
        )
        if any(v is None for v in values):
            return None
        job, current, target, reason, at_ms = cast(list[str], values)
        return Scaling(job, int(current), int(target), reason, int(at_ms))

    def window(self, first: int, count: int = WINDOW) -> Window:
        """Positions first .. first + count - 1 of the run (fewer at its end) as one atomic
        read: items, ledger records, attempts and errors. `first` is a multiple of WINDOW."""
        k = self.keys
        keys = [k.meta, k.items, k.ledger, k.attempts, k.errors, k.dead]
        raw = cast(
            list[Any], self.call(lambda: self._eval_raw(self.scripts.window, keys, [first, count]))
        )
        meta, item_fields, ledger_fields, attempts, errors, dead = raw
        total_b, kind_b, start_b, step_b, chunk_b, seeded_b = meta
        total = int(total_b or 0)
        n = max(0, min(first + count, total) - first)
        if kind_b == layout.KIND_RANGE.encode():
            start, step = int(start_b), int(step_b)
            items = [layout.range_item(start, step, p) for p in range(first, first + n)]
        else:
            size = int(chunk_b or layout.ITEMS_PER_FIELD)
            joined: list[str] = []
            for blob in item_fields:
                joined.extend(layout.split_chunk(blob.decode() if blob else ""))
            skip = first - (first // size) * size
            items = joined[skip : skip + n]
        records: list[layout.Record | None] = []
        for blob in ledger_fields:
            records.extend(layout.split_records(blob))
        skip = first % layout.RECORDS_PER_FIELD
        return Window(
            first=first,
            total=total,
            seeded=seeded_b is not None,
            items=items,
            records=records[skip : skip + n],
            attempts=[int(a or 0) for a in attempts],
            errors=[e.decode() if e is not None else None for e in errors],
            dead=[d.decode() if d is not None else None for d in dead],
        )

    def _eval_raw(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run a script whose reply holds bytes that are not text (ledger records): the reply
        is not decoded."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return self.client.execute_command(*command, NEVER_DECODE=True)  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:
            script.sha = self.client.script_load(script.script)
            return self.client.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", script.sha, len(keys), *keys, *args, NEVER_DECODE=True
            )

    def outputs(self, positions: Sequence[int]) -> dict[int, str]:
        """The outputs of these positions (those that have one), as JSON text, read a few at a
        time so that no reply holds more than about OUTPUT_BYTES_PER_CALL bytes of them
        (HSTRLEN first: a single output bigger than that comes alone)."""
        if not positions:
            return {}
        key = self.keys.outputs

        def lengths() -> list[int]:
            pipe = self.client.pipeline(transaction=False)
            for p in positions:
                pipe.hstrlen(key, str(p))
            return [int(n) for n in pipe.execute()]

        found: dict[int, str] = {}
        batch: list[int] = []
        size = 0
        for p, n in [*zip(positions, self.call(lengths), strict=True), (-1, 0)]:
            if batch and (p < 0 or size + n > OUTPUT_BYTES_PER_CALL):
                values = cast(
                    list[str | None],
                    self.call(lambda batch=batch: self.client.hmget(key, [str(q) for q in batch])),  # type: ignore[misc]
                )
                found.update((q, v) for q, v in zip(batch, values, strict=True) if v is not None)
                batch, size = [], 0
            if p >= 0 and n > 0:
                batch.append(p)
                size += n
        return found

    def worker_names(self) -> dict[int, str]:
        """Number in ledger records -> worker id (as many as the run had workers)."""
        names: dict[int, str] = {}
        cursor = 0
        while True:
            cursor, page = cast(
                tuple[int, dict[str, str]],
                self.call(
                    lambda cursor=cursor: self.client.hscan(  # type: ignore[misc]
                        self.keys.workers, cursor, count=ADMIN_CHUNK
                    )
                ),
            )
            names.update((int(n), name) for name, n in page.items())
            if int(cursor) == 0:
                return names

    def leased_positions(self) -> set[int]:
        """Positions leased now (as many as workers hold, whatever the run's size)."""
        held: set[int] = set()
        cursor = 0
        while True:
            cursor, page = cast(
                tuple[int, list[tuple[str, float]]],
                self.call(
                    lambda cursor=cursor: self.client.zscan(  # type: ignore[misc]
                        self.keys.leases, cursor, count=ADMIN_CHUNK
                    )
                ),
            )
            held.update(int(member.split(":", 1)[0]) for member, _ in page)
            if int(cursor) == 0:
                return held

    def retry_dead(self, chunk: int = ADMIN_CHUNK) -> int:
        """Give every dead item a fresh set of attempts, about `chunk` items per call; returns
        how many were requeued. Safe while workers run: items that die meanwhile may be
        requeued too, and the walk ends even if they keep dying.

        A drained run's keys may be set to expire (expire_results): the expiry is removed
        before the walk, and again after it, in case a worker found the run drained between
        the first removal and the first requeued item (the run is not drained after)."""
        self.keep_results()
        cursor, requeued = "0", 0
        while True:
            cursor, n = self.retry_dead_chunk(cursor, chunk)
            requeued += n
            if cursor == "0":
                self.keep_results()
                return requeued

    def expire_results(self, ttl_s: int) -> bool:
        """Once the run is drained, its keys expire in `ttl_s` seconds; False (and no
        expiry) if it is not drained."""
        k = self.keys
        head = [k.meta, k.requeue, k.suspects, k.leases]
        keys = head + [key for key in k.named if key not in head]
        return bool(self.call(lambda: self.scripts.expire(keys=keys, args=[int(ttl_s * 1000)])))

    def keep_results(self) -> None:
        """Remove the expiry of the run's keys (a retried run is worked on again)."""

        def persist() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key in self.keys.named:
                pipe.persist(key)
            pipe.execute()

        self.call(persist)

    def retry_dead_chunk(self, cursor: str, count: int) -> tuple[str, int]:
        """One call of retry-dead: (next cursor, '0' when done; items requeued)."""
        k = self.keys
        result: list[Any] = self.call(
            lambda: self.scripts.retry_dead(
                keys=[k.requeue, k.attempts, k.dead, k.ledger], args=[cursor, count]
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


def _ms(duration_ms: int) -> int:
    """A duration for a ledger record: UNKNOWN_MS when not known or more than 4 bytes hold."""
    return duration_ms if 0 <= duration_ms < layout.UNKNOWN_MS else layout.UNKNOWN_MS


def _chunks(positions: Sequence[int]) -> list[Sequence[int]]:
    return [positions[i : i + MAX_BATCH] for i in range(0, len(positions), MAX_BATCH)]
