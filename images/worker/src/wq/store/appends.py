"""A run's appends, for seeders of open runs (the policy is in wq.seed.open_runs): what an
appender needs to know of the run, one append per chunk of items, the progressive seeder's
progress, and the seal that closes the run to appends."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from enum import Enum
from typing import NamedTuple, cast

from redis.exceptions import LockNotOwnedError, RedisError

from wq.base.errors import AppendLockBusy, AppendLockLost
from wq.store import layout
from wq.store.handle import RunHandle

# Seconds an append lock lives unless released: a chunk's pieces take milliseconds.
LOCK_S = 30


class OpenState(NamedTuple):
    seeded: bool
    open: bool  # takes appends
    total: int  # items in the run: the position the next append starts at
    chunk: int  # items per field of the items hash


class Appended(NamedTuple):
    """An append went in whole."""

    total: int  # the run's total with the appended items


class AppendRefusal(Enum):
    """Why append.lua added nothing."""

    TOTAL_CHANGED = -1  # another appender went first: lay the items out for the new total
    SEALED = -2  # the run takes no more items
    NOT_SEEDED = -3
    PROGRESS_CHANGED = -4  # another seeder of the same source moved its progress meanwhile


class Progress(NamedTuple):
    """What a progressive seeder recorded of its source: how many of its items are in the run,
    and their digest (digests.ItemsDigest); 0 and None if it recorded nothing."""

    items: int
    digest: str | None


class SealOutcome(Enum):
    """What seal.lua did."""

    SEALED_NOW = 1
    SEALED_BEFORE = 0  # or never open: the seal changed nothing
    NOT_SEEDED = -1


class SealReply(NamedTuple):
    """seal.lua's answer (wq.seed.open_runs.seal turns it into the run's SealResult)."""

    outcome: SealOutcome
    total: int  # of the run
    digest: str | None  # of its items; None until recorded
    was_open: bool  # whether the run was ever open to appends


class Appends(RunHandle):
    """The calls of `wq seed --append`, `wq seed --progressive` and `wq seal`."""

    def open_state(self) -> OpenState:
        """What an appender needs to know of the run."""
        fields = (layout.SEEDED, layout.OPEN, layout.TOTAL, layout.FORMAT, layout.CHUNK)
        seeded, is_open, total, fmt, chunk = cast(
            list[str | None], self._retried(self.client.hmget, self.keys.meta, *fields)
        )
        if fmt != layout.SHARDED_FORMAT:  # a sharded run's directory: appends go to its shards
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
    ) -> Appended | AppendRefusal:
        """Add `count` items, laid out as fields for a run of `total` items
        (layout.chunk_fields(items, chunk, first=total)), in one step, or refuse them all.
        `progress`: a progressive seeder's (items of its source in before these, digest of its
        source's items once these are in)."""
        k = self.keys
        args: list[str | int] = [total, count, *(progress or ("", ""))]
        for field, joined in fields:
            args += [field, joined]
        outcome = int(self._eval(self.scripts.append, keys=[k.meta, k.items], args=args))
        return Appended(total=outcome) if outcome >= 0 else AppendRefusal(outcome)

    @contextmanager
    def locked(self, wait_s: float) -> Iterator[None]:
        """Hold the run's append lock (keys.append_lock) while a chunk goes into a sharded
        run's shards, so that two appenders never lay out pieces at the same positions. It
        expires after LOCK_S unless released, should its holder die. AppendLockBusy if
        another appender holds it for `wait_s`; AppendLockLost if it expired while held (the
        pieces may have met another appender's: the run is then checked with `wq status
        --check`)."""
        lock = self.client.lock(self.keys.append_lock, timeout=LOCK_S, blocking_timeout=wait_s)
        if not self.call(lock.acquire):
            raise AppendLockBusy(
                f"another appender has held run {self.run!r}'s append lock for {wait_s:g}s; "
                "retry once it is done"
            )
        try:
            yield
        except BaseException:
            with suppress(RedisError):  # else it expires: the error raised says more
                lock.release()
            raise
        try:
            self.call(lock.release)
        except LockNotOwnedError:
            raise AppendLockLost(
                f"run {self.run!r}'s append lock expired while this appender held it (over "
                f"{LOCK_S}s for one chunk): another appender may have laid out items at the "
                "same positions; check the run with `wq status --check`"
            ) from None

    def touch_seeder(self) -> None:
        """Mark the run's progressive seeder alive now (Redis time), as each of its appends
        does, for the workers that wait on the open run."""

        def touch() -> None:
            seconds, micros = self.client.time()
            self.client.hset(self.keys.meta, layout.SEEDER_MS, seconds * 1000 + micros // 1000)

        self.call(touch)

    def progress(self) -> Progress:
        """What the run's progressive seeder recorded of its source."""
        fields = (layout.PROGRESS, layout.PROGRESS_DIGEST)
        count, digest = cast(
            list[str | None], self._retried(self.client.hmget, self.keys.meta, *fields)
        )
        return Progress(items=int(count or 0), digest=digest)

    def seal(self) -> SealReply:
        """Close an open run to appends."""
        outcome, total, digest, was_open = self._eval(self.scripts.seal, keys=[self.keys.meta])
        return SealReply(
            outcome=SealOutcome(int(outcome)),
            total=int(total),
            digest=digest or None,
            was_open=bool(int(was_open)),
        )

    def item_fields(self, first: int, count: int) -> list[str]:
        """Fields first .. first + count - 1 of the items hash ('' for one that is absent)."""
        fields = list(range(first, first + count))
        values = cast(list[str | None], self._retried(self.client.hmget, self.keys.items, fields))
        return [v or "" for v in values]

    def record_digest(self, digest: str) -> None:
        """Record the digest of a sealed run's items (they change no more)."""
        self._retried(self.client.hset, self.keys.meta, layout.DIGEST, digest)
