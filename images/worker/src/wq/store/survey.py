"""What a whole Redis holds, for the exporter: which runs (SCAN, never KEYS) and which server
it is (INFO's run_id, new at each start), on a single server or on every primary of a Redis
Cluster. Everything about one run is read through wq.store.queue.
"""

from typing import Any, cast

from redis.cluster import RedisCluster

from wq.store.connection import Client
from wq.store.keys import META_PATTERN, run_of_meta_key

# Keys looked at per SCAN call: each call stays short however big the keyspace.
SCAN_COUNT = 1000


def find_runs(client: Client) -> set[str]:
    """The runs whose meta hash exists (seeded ones, and the meta of a run a late result
    touched after it was purged)."""
    # A cluster client walks every primary, a cursor each.
    names = client.scan_iter(match=META_PATTERN, count=SCAN_COUNT)
    return {run for run in map(run_of_meta_key, names) if run is not None}


def server_identity(client: Client) -> str:
    """Changes whenever the server restarts (or, on a cluster, any primary restarts or a
    replica takes over): the run_id of each primary."""
    if isinstance(client, RedisCluster):
        reply = cast(Any, client.info("server", target_nodes=RedisCluster.PRIMARIES))
        # One reply per primary by node name; a cluster of one primary gives the reply itself.
        infos = [reply] if "run_id" in reply else list(reply.values())
        return ",".join(sorted(str(info["run_id"]) for info in infos))
    return str(client.info("server")["run_id"])
