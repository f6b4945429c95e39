"""Exceptions wq raises, and the exit code each maps to on the command line."""


class WqError(Exception):
    """Base class: every error wq raises on purpose."""

    exit_code = 1


class ConfigError(WqError):
    """Bad input from the user (flags, URL, items file). Retrying will not help."""

    exit_code = 2


class RedisUnavailable(WqError):
    """Redis stayed unreachable for longer than the retry budget."""


class AppendLockBusy(WqError):
    """Another appender held a sharded run's append lock for as long as this one waited."""


class AppendLockLost(WqError):
    """A sharded run's append lock expired while its appender held it."""


class SeedTimeout(WqError):
    """The run was never marked as seeded within the wait budget, or its progressive seeder
    stopped adding items to it without sealing it."""


class RunLost(WqError):
    """The run was seeded and its keys are gone: Redis restarted without persistence, the run
    was purged, or its keys were evicted. Retrying cannot bring the items back."""

    exit_code = 4

    def __init__(self, run: str) -> None:
        super().__init__(
            f"run {run!r} was seeded but its keys are gone: Redis restarted without "
            "persistence, the run was purged, or its keys were evicted; its items cannot be "
            "recovered: seed the run again"
        )


class RunFormatError(ConfigError):
    """The run's keys are laid out as another wq version lays them out (wq.store.layout)."""

    def __init__(self, run: str, found: str | None, expected: str) -> None:
        super().__init__(
            f"run {run!r} was seeded by another wq version (storage format {found or '1'}; "
            f"this wq reads format {expected}): finish it with the wq image that seeded it, "
            "or delete it (`wq purge`) and seed it again"
        )


class ShardedRunError(ConfigError):
    """A read of a run's items that went to a sharded run's directory, which holds none: its
    items are read shard by shard (wq.read.ledger.parts)."""

    def __init__(self, run: str) -> None:
        super().__init__(f"run {run!r} is sharded: its items are read shard by shard")


class RedisFull(WqError):
    """Redis refused a write because it reached its memory limit (OOM)."""


class SourceChanged(WqError):
    """The list being adopted changed while it was copied; adopting it again may work."""


class SourceError(WqError):
    """The items' source failed while it was read (a server error, a dropped connection):
    nothing was seeded, and retrying may work."""


class KubernetesUnavailable(WqError):
    """A Kubernetes API call failed: the API server out of reach, throttling, a refusal.
    `wq autoscale` logs it and tries again at its next step (wq.scale.autoscale)."""


class NotReady(WqError):
    """A release's Redis or exporter has no Ready pod (yet): `kubectl wq` waits, then says why."""
