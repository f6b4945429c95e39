"""A run's appends, for seeders of open runs (the policy is in wq.seed.open_runs): what an
appender needs to know of the run, one append per chunk of items, the progressive seeder's
progress, and the seal that closes the run to appends."""

from collections.abc import Sequence
from typing import NamedTuple, cast

from wq.store import layout
from wq.store.handle import RunHandle


class OpenState(NamedTuple):
    seeded: bool
    open: bool  # takes appends
    total: int  # items in the run: the position the next append starts at
    chunk: int  # items per field of the items hash


class Appends(RunHandle):
    """The calls of `wq seed --append`, `wq seed --progressive` and `wq seal`."""

    def open_state(self) -> OpenState:
        """What an appender needs to know of the run."""
        fields = (layout.SEEDED, layout.OPEN, layout.TOTAL, layout.FORMAT, layout.CHUNK)
        seeded, is_open, total, fmt, chunk = cast(
            list[str | None], self._retried(self.client.hmget, self.keys.meta, *fields)
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
        return int(self._eval(self.scripts.append, keys=[k.meta, k.items], args=args))

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
            list[str | None], self._retried(self.client.hmget, self.keys.meta, *fields)
        )
        return int(count or 0), digest

    def seal(self) -> tuple[int, int, str | None, bool]:
        """Close an open run to appends: (1 sealed now, 0 sealed already, -1 not seeded;
        its total; its digest, None until recorded; whether it was ever open)."""
        outcome, total, digest, was_open = self._eval(self.scripts.seal, keys=[self.keys.meta])
        return int(outcome), int(total), digest or None, bool(int(was_open))

    def item_fields(self, first: int, count: int) -> list[str]:
        """Fields first .. first + count - 1 of the items hash ('' for one that is absent)."""
        fields = list(range(first, first + count))
        values = cast(list[str | None], self._retried(self.client.hmget, self.keys.items, fields))
        return [v or "" for v in values]

    def record_digest(self, digest: str) -> None:
        """Record the digest of a sealed run's items (they change no more)."""
        self._retried(self.client.hset, self.keys.meta, layout.DIGEST, digest)
