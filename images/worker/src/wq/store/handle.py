"""The handle on one run that every role of its Redis operations is built on: the client, the
run id and its keys, the Lua scripts, and the Retrying wrapper every call goes through.

The roles (leases, seeding, appends, reading, admin: wq.store.queue holds them together) are
the only code that talks to Redis about a run (wq.store.survey looks at a whole Redis for the
exporter). Every state change is one Lua script call, so it is atomic; every call goes through
the Retrying wrapper, so a Redis outage is retried and then raised, never read as "no work".
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, ParamSpec, Self, TypeVar, cast

import redis
from redis.commands.core import Script

from wq.base.errors import RunFormatError
from wq.store import layout
from wq.store.connection import Client, Retrying
from wq.store.keys import RunKeys
from wq.store.scripts import Scripts

# One Lua call handles at most this many positions, well under Lua's unpack() limit.
MAX_BATCH = 1000
# Outputs sent in one completion call, or read in one reply, about: beyond, more calls.
OUTPUT_BYTES_PER_CALL = 1 << 20
P = ParamSpec("P")
T = TypeVar("T")

# Operations on a whole run (retry-dead, purge, scans of its hashes) go in calls of about this
# many items or keys, so that no single call blocks Redis for longer as the run grows.
ADMIN_CHUNK = 500


class Directory(NamedTuple):
    """A sharded run's directory, as RunHandle.directory reads it."""

    runs: list[str]  # the shards' run ids in position order; []: the run is not sharded
    striped: bool  # shard_layout.STRIPES; False: blocks


class RunHandle:
    """One run's client, keys, scripts and retries. A role subclasses it; the roles of one
    RunQueue share its client, scripts and Retrying (`scripts`: those already registered)."""

    def __init__(
        self, client: Client, run: str, retrying: Retrying, scripts: Scripts | None = None
    ) -> None:
        self.client = client
        self.run = run
        self.keys = RunKeys(run)
        self.scripts = Scripts(client) if scripts is None else scripts
        self.call = retrying

    def close(self) -> None:
        self.client.close()

    def _eval(self, script: Script, keys: Sequence[str], args: Sequence[Any] | None = None) -> Any:
        """One Lua call, retried as a whole (Retrying)."""
        return self.call(lambda: script(keys=keys, args=args))

    def _retried(self, command: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """One Redis command, or a function whose commands are retried together, retried as a
        whole (Retrying)."""
        return self.call(lambda: command(*args, **kwargs))

    def shard(self, run: str) -> Self:
        """The same role on one shard of this (sharded) run: same client, scripts, retries."""
        return type(self)(self.client, run, self.call, self.scripts)

    def shard_runs(self) -> list[str]:
        """The run's shards in position order, from its directory (wq.store.shard_layout);
        [] when the run is not sharded (or not seeded yet)."""
        return self.directory().runs

    def directory(self) -> Directory:
        """The run's shards and their layout (wq.store.shard_layout); no runs when the run is
        not sharded (or not seeded yet)."""
        fields = (layout.FORMAT, layout.SHARD_RUNS, layout.SHARD_LAYOUT)
        found = self._retried(self.client.hmget, self.keys.meta, *fields)
        fmt, joined, shard_layout = cast(list[str | None], found)
        if fmt != layout.SHARDED_FORMAT or not joined:
            return Directory([], False)
        return Directory(joined.split(layout.LIST_SEPARATOR), shard_layout == layout.STRIPES)

    def _check_format(self, seeded: bool, fmt: str | None) -> None:
        if seeded and fmt not in layout.READABLE_FORMATS:
            raise RunFormatError(self.run, fmt, layout.STORAGE_FORMAT)

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
