"""A sharded run's directory (wq.store.shard_layout): where its shards go, and its
commit once they are all seeded. Each shard is a run of its own, reached through
RunQueue.shard; RunHandle.shard_runs reads which they are."""

from redis.cluster import RedisCluster

from wq.store import layout
from wq.store.handle import RunHandle
from wq.store.keys import RunKeys, shard_run_id

# Salts tried per shard to land it on the node wanted: with P primaries owning equal slot
# ranges about P tries are needed; this many fail only on a cluster with a node owning
# almost no slots, which then shares another's shards.
MAX_SALT = 4096
# A range run's start and step.
Range = tuple[int, int]


class Shards(RunHandle):
    """The seeder's calls on a sharded run's directory."""

    def place(self, count: int) -> list[str]:
        """Ids for `count` shards of the run: on a Redis Cluster, each shard on the next
        primary in turn (by node name), so that shards spread over the nodes; on one server,
        simply numbered."""
        if not isinstance(self.client, RedisCluster):
            return [shard_run_id(self.run, k) for k in range(count)]
        cluster = self.client
        primaries = sorted(node.name for node in cluster.get_primaries())  # type: ignore[no-untyped-call]
        runs = []
        for k in range(count):
            wanted = primaries[k % len(primaries)]
            candidates = (shard_run_id(self.run, k, salt) for salt in range(MAX_SALT))
            runs.append(
                next(
                    (r for r in candidates if _node_of(cluster, r) == wanted),
                    shard_run_id(self.run, k),
                )
            )
        return runs

    def commit(
        self,
        total: int,
        digest: str,
        runs: list[str],
        item_range: Range | None,
        open_run: bool = False,
    ) -> bool:
        """Write the run's directory, once its shards are seeded: a range run's shards in
        blocks, listed items' in stripes; `open_run`: an open run, of no items yet (digest
        ''). False when the run was seeded already (nothing is changed)."""
        start, step = item_range or (0, 1)
        kind, shard_layout = (
            (layout.KIND_RANGE, layout.BLOCKS) if item_range else (layout.KIND_LIST, layout.STRIPES)
        )
        args = [total, kind, start, step, digest, layout.LIST_SEPARATOR.join(runs), len(runs)]
        args += [shard_layout, "1" if open_run else ""]
        return bool(self._eval(self.scripts.seed_shards, keys=[self.keys.meta], args=args))


def _node_of(cluster: RedisCluster, run: str) -> str:
    return str(cluster.get_node_from_key(RunKeys(run).meta).name)  # type: ignore[no-untyped-call]
