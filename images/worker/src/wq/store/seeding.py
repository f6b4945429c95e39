"""A run's seeding, for the seeder (the policy is in wq.seed.seeder; these are its Redis
calls): stage items in a staging hash, then commit it as the run's items in one step; and
read a plain list that a run adopts."""

from collections.abc import Iterable, Sequence
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from wq.base.errors import ConfigError, SourceChanged
from wq.store import digests, layout
from wq.store.handle import RunHandle

# Staging writes: fields per HSET, HSETs per round trip, and how long an uncommitted
# staging hash lives.
FIELDS_PER_HSET = 64
HSETS_PER_ROUND_TRIP = 16
STAGING_TTL_S = 3600


class Seeding(RunHandle):
    """The seeder's calls: staging, the commit, and reading a list to adopt."""

    def stage_items(self, staging: str, items: Sequence[str], chunk: int) -> str:
        """Fill a staging hash with JSON-encoded items, laid out like the items hash with
        `chunk` items per field; it expires unless committed, in case this seeder dies.
        Returns the items' digest (digests.ItemsDigest), computed on the way."""

        def stage() -> str:
            pipe = self.client.pipeline(transaction=False)
            pipe.unlink(staging)  # a retry after an outage starts afresh
            digest = digests.ItemsDigest()
            self._write_fields(pipe, staging, layout.chunk_fields(items, chunk), digest)
            return digest.hexdigest()

        return self.call(stage)

    def stage_fields(self, staging: str, fields: Sequence[tuple[int, str]]) -> None:
        """Add fields of the items hash (layout.chunk_fields) to a staging hash."""
        # A fresh pipeline each attempt: the whole batch is retried as one unit.
        self.call(
            lambda: self._write_fields(self.client.pipeline(transaction=False), staging, fields)
        )

    def _write_fields(
        self,
        pipe: Any,  # a Pipeline or, on a Redis Cluster, a ClusterPipeline
        staging: str,
        fields: Iterable[tuple[int, str]],
        digest: digests.ItemsDigest | None = None,
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
            seeded = int(self._eval(self.scripts.seed, keys=keys, args=args))
        if seeded < 0:
            raise SourceChanged(
                f"list {source!r} changed length while it was being adopted ({total} items "
                "copied); adopt it again once nothing writes to it"
            )
        if source is not None and apart and seeded == 1:
            self._retried(self.client.unlink, source)
        return seeded == 1

    def drop_staging(self, staging: str) -> None:
        self._retried(self.client.unlink, staging)

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

    def list_range(self, source: str, first: int, count: int) -> list[str]:
        """Items first .. first + count - 1 of a plain list (fewer at its end); ConfigError
        if one is not UTF-8 text."""
        last = first + count - 1
        raw = cast(
            list[bytes],
            self._retried(
                self.client.execute_command, "LRANGE", source, first, last, NEVER_DECODE=True
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


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True
