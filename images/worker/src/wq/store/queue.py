"""One run's queue on Redis: its operations split by caller, each role built on one shared
handle (wq.store.handle: client, keys, scripts, retries).

    queue.leases   the workers: lease, complete, fail, renew, release, reap (wq.store.leases)
    queue.seeding  the seeder: stage items, commit them as the run (wq.store.seeding)
    queue.appends  seeders of open runs: append, progress, seal (wq.store.appends)
    queue.reading  counts, windows of the ledger, outputs, seeded state (wq.store.reading)
    queue.admin    retry-dead, the results' expiry, purge, scaling records (wq.store.admin)
    queue.shards   a sharded run's directory: its shards' placement and commit
                   (wq.store.shards); queue.shard_runs() names its shards, queue.shard(id)
                   is the queue of one of them

These are the only code that talks to Redis about a run (wq.store.survey looks at a whole
Redis for the exporter). Every state change is one Lua script call, so it is atomic; every
call goes through the Retrying wrapper, so a Redis outage is retried and then raised, never
read as "no work".
"""

from wq.base.logs import EventLog
from wq.base.options import ConnectionConfig
from wq.base.run_id import check_run_id
from wq.store.admin import Admin
from wq.store.appends import Appends
from wq.store.connection import Client, RedisSettings, Retrying
from wq.store.handle import RunHandle
from wq.store.leases import Leases
from wq.store.reading import Reading
from wq.store.scripts import Scripts
from wq.store.seeding import Seeding
from wq.store.shards import Shards

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

    retrying = Retrying(settings, config.redis_wait, on_retry=warn)
    # A cluster client asks a node for the cluster's layout as it is made: an outage then is
    # waited out as any other, not an error at once.
    return RunQueue(retrying(settings.client), run, retrying)


class RunQueue(RunHandle):
    """The run's handle (run id, keys, close) and its operations by role, all on one client,
    one set of registered scripts and one Retrying."""

    def __init__(
        self, client: Client, run: str, retrying: Retrying, scripts: Scripts | None = None
    ) -> None:
        super().__init__(client, run, retrying, scripts)
        shared = (client, run, retrying, self.scripts)
        self.leases = Leases(*shared)
        self.seeding = Seeding(*shared)
        self.appends = Appends(*shared)
        self.reading = Reading(*shared)
        self.admin = Admin(*shared)
        self.shards = Shards(*shared)
