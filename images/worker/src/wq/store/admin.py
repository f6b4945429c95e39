"""Administering a run: give its dead items new attempts (`wq retry-dead`), set or remove the
expiry of a drained run's keys, delete the run (`wq purge`), and record the autoscaler's
decisions. Operations on a whole run go in bounded calls (ADMIN_CHUNK items or keys each)."""

from typing import Any, NamedTuple, cast

from redis.cluster import RedisCluster

from wq.store.handle import ADMIN_CHUNK, RunHandle


class RetryDeadStep(NamedTuple):
    """One call of retry-dead."""

    cursor: str  # where the next call starts; "0" once the walk is done
    requeued: int  # dead items this call requeued


class Admin(RunHandle):
    """The calls of the admin commands, of a worker that finds the run drained (the results'
    expiry), and of the autoscaler (its decisions)."""

    def retry_dead(self, chunk: int = ADMIN_CHUNK) -> int:
        """Give every dead item a fresh set of attempts, about `chunk` items per call; returns
        how many were requeued. Safe while workers run: items that die meanwhile may be
        requeued too, and the walk ends even if they keep dying.

        A drained run's keys may be set to expire (expire_results): the expiry is removed
        before the walk, and again after it, in case a worker found the run drained between
        the first removal and the first requeued item (the run is not drained after)."""
        shards = self._shards()
        if shards:  # the run's directory is no longer drained either: its expiry goes too
            self.keep_results()
            return sum(shard.retry_dead(chunk) for shard in shards)
        self.keep_results()
        cursor, requeued = "0", 0
        while True:
            step = self.retry_dead_chunk(cursor, chunk)
            cursor, requeued = step.cursor, requeued + step.requeued
            if cursor == "0":
                self.keep_results()
                return requeued

    def expire_results(self, ttl_s: int) -> bool:
        """Once the run is drained, its keys expire in `ttl_s` seconds; False (and no
        expiry) if it is not drained. A sharded run's directory expires with its shards,
        once they all are drained."""
        shards = self._shards()
        if shards:
            if not all([shard.expire_results(ttl_s) for shard in shards]):
                return False
            self._retried(self._expire_directory, int(ttl_s * 1000))
            return True
        k = self.keys
        head = [k.meta, k.requeue, k.suspects, k.leases]
        keys = head + [key for key in k.named if key not in head]
        return bool(self._eval(self.scripts.expire, keys=keys, args=[int(ttl_s * 1000)]))

    def keep_results(self) -> None:
        """Remove the expiry of the run's keys (a retried run is worked on again)."""

        def persist() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key in self.keys.named:
                pipe.persist(key)
            pipe.execute()

        self.call(persist)

    def retry_dead_chunk(self, cursor: str, count: int) -> RetryDeadStep:
        """One call of retry-dead, from `cursor` ("0": the start), about `count` items."""
        k = self.keys
        result: list[Any] = self._eval(
            self.scripts.retry_dead,
            keys=[k.requeue, k.attempts, k.dead, k.ledger],
            args=[cursor, count],
        )
        return RetryDeadStep(cursor=str(result[0]), requeued=int(result[1]))

    def purge(self, chunk: int = ADMIN_CHUNK) -> int:
        """Delete every key of the run; returns how many keys were deleted.

        UNLINK, not DEL: Redis frees big values in the background (DEL of a 1M-item run held
        it for 0.1-0.4 s). The run's named keys go in one call, so a worker sees all of the
        run or none of it; other keys (staging hashes) follow, SCAN-ing `chunk` names a call.
        """
        # A sharded run's shards first: a purge cut short is done again while its directory
        # still names them.
        deleted = sum(shard.purge(chunk) for shard in self._shards())
        deleted += int(self._retried(self.client.unlink, *self.keys.named))
        cursor = 0
        while True:
            cursor, names = self._retried(self._scan_run, cursor, chunk)
            if names:
                deleted += int(self._retried(self.client.unlink, *names))
            if cursor == 0:
                return deleted

    def _shards(self) -> list["Admin"]:
        return [self.shard(run) for run in self.shard_runs()]

    def _expire_directory(self, ttl_ms: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys.named:
            pipe.pexpire(key, ttl_ms)
        pipe.execute()

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

    def record_scaling(self, job: str, current: int, target: int, reason: str) -> bool:
        """Record the autoscaler's decision on the worker Job (layout: the scaling hash);
        False, and nothing written, if the run is not seeded."""
        k = self.keys
        args: list[str | int] = [job, current, target, reason]
        return bool(self._eval(self.scripts.scaling, keys=[k.meta, k.scaling], args=args))
