"""Every Redis key wq uses, in one place.

All keys of a run share the prefix ``wq:{RUN}:``; the braces are a Redis Cluster hash tag,
so a run's keys live in one slot and multi-key Lua scripts work on a cluster too.
"""

import re
from dataclasses import dataclass

from wq.base.run_id import RUN_ID_PATTERN

PREFIX = "wq"
# The meta hash of every run, for SCAN MATCH (braces are plain characters in its glob).
META_PATTERN = f"{PREFIX}:{{*}}:meta"
_META_KEY = re.compile(rf"{PREFIX}:\{{({RUN_ID_PATTERN.pattern})\}}:meta")


def run_of_meta_key(key: str) -> str | None:
    """The run whose meta hash `key` is; None for another key that META_PATTERN matches."""
    found = _META_KEY.fullmatch(key)
    return found.group(1) if found else None


def shard_run_id(run: str, shard: int, salt: int = 0) -> str:
    """The id of shard `shard` of a sharded run: its keys carry it as their hash tag. A '/'
    is never in a run id (RUN_ID_PATTERN), so no run of a user's is called so, and SCANs for
    META_PATTERN list only whole runs. `salt` moves the tag to another slot: the seeder
    chooses it so that the shards land on different nodes of a Redis Cluster."""
    return f"{run}/{shard}" + (f".{salt}" if salt else "")


@dataclass(frozen=True)
class RunKeys:
    run: str

    def _key(self, name: str) -> str:
        return f"{PREFIX}:{{{self.run}}}:{name}"

    @property
    def meta(self) -> str:
        """Hash: total, cursor (next unleased position), seeded marker, counters, times."""
        return self._key("meta")

    @property
    def items(self) -> str:
        """Hash: chunk number -> `chunk` items as JSON text joined by newlines (one field per
        item would make seeding a million items several times slower). Absent for range runs:
        their items are computed."""
        return self._key("items")

    @property
    def requeue(self) -> str:
        """List of positions that came back (expired, failed, released); leased first."""
        return self._key("requeue")

    @property
    def suspects(self) -> str:
        """List of positions that came back from an expired lease of several items, uncharged:
        any of them may have killed its worker, so each is leased again on its own."""
        return self._key("suspects")

    @property
    def batches(self) -> str:
        """Hash: lease token -> the batch it holds: which positions, and which of them are
        still held (wq.store.layout). A lease of one item alone is solo: if it expires, the
        item was surely the one running when its worker died, and that costs an attempt."""
        return self._key("batches")

    @property
    def deaths(self) -> str:
        """Hash: position -> times a worker died (its solo lease expired) while running it."""
        return self._key("deaths")

    @property
    def leases(self) -> str:
        """Sorted set: lease token -> its deadline (ms, Redis server clock), one member per
        leased batch. The batches hash says what each token holds; a late result of a lease
        that expired finds no batch under its token, and is refused."""
        return self._key("leases")

    @property
    def attempts(self) -> str:
        """Hash: position -> attempts charged so far (failures, and deaths of a worker that held
        the item alone); absent means none. The attempt being made is this plus one."""
        return self._key("attempts")

    @property
    def ledger(self) -> str:
        """Hash: field -> packed records of what happened to finished items (done or dead: state,
        attempts, duration, worker, finish time), 32 per field (wq.store.layout)."""
        return self._key("ledger")

    @property
    def outputs(self) -> str:
        """Hash: position -> output of the accepted attempt, as JSON text."""
        return self._key("outputs")

    @property
    def workers(self) -> str:
        """Hash: worker id -> its number in ledger records."""
        return self._key("workers")

    @property
    def dead(self) -> str:
        """Hash: position -> last error, for items that used up their attempts."""
        return self._key("dead")

    @property
    def errors(self) -> str:
        """Hash: position -> last error of an item that failed and was retried."""
        return self._key("errors")

    @property
    def durations(self) -> str:
        """Hash: bucket number -> attempts whose duration fell in it, and sum_ms: a histogram
        of how long attempts took (wq.store.layout)."""
        return self._key("durations")

    @property
    def scaling(self) -> str:
        """Hash: the autoscaler's last decision on the run's worker Job (wq.store.layout)."""
        return self._key("scaling")

    @property
    def named(self) -> list[str]:
        """Every key above, meta first: all of a run's keys but the staging hashes."""
        return [
            self.meta,
            self.items,
            self.requeue,
            self.suspects,
            self.batches,
            self.deaths,
            self.leases,
            self.attempts,
            self.ledger,
            self.outputs,
            self.workers,
            self.dead,
            self.errors,
            self.durations,
            self.scaling,
            self.append_lock,
        ]

    @property
    def append_lock(self) -> str:
        """String: held by the appender adding a chunk to a sharded open run, whose pieces go
        to several shards in turn (wq.seed.open_shards); it expires if that appender dies."""
        return self._key("append_lock")

    def staging_items(self, token: str) -> str:
        """Like items; a seeder fills it before it commits, and it expires if that seeder dies."""
        return self._key(f"staging:{token}")

    @property
    def pattern(self) -> str:
        """Glob matching every key of this run (for purge)."""
        return self._key("*")
