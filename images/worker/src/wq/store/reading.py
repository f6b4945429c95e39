"""Reading a run, for `wq status`, `wq report`, `wq dead`, the exporter, the autoscaler and the
checks of seeders and workers: its counts and durations (one atomic read), windows of its items
and ledger, its outputs, and its seeded state. Nothing here changes the run."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from wq.base.errors import RunLost, ShardedRunError
from wq.base.status import RunStatus, Scaling, is_drained
from wq.store import layout
from wq.store.handle import ADMIN_CHUNK, OUTPUT_BYTES_PER_CALL, RunHandle

# Positions read per call by window(): 32 fields of the items hash and of the ledger.
WINDOW = 32 * layout.RECORDS_PER_FIELD


@dataclass(frozen=True)
class Window:
    """Consecutive positions of a run, read in one step (Reading.window)."""

    first: int
    total: int  # of the run
    seeded: bool
    items: list[str]  # JSON text, one per position of the window
    records: list[layout.Record | None]  # ledger records; None: pending or in flight
    attempts: list[int]  # charged so far (failures, deaths of a worker running it alone)
    errors: list[str | None]  # last error of a failed attempt
    dead: list[str | None]  # the error of a dead item, from the dead-letter hash


class SeedState(NamedTuple):
    seeded: bool
    digest: str | None  # of the items it was seeded with; None if not seeded or without one


class RunMetrics(NamedTuple):
    """A run's counts and its durations histogram, read at one moment."""

    status: RunStatus
    durations: layout.Durations


class _Counts(NamedTuple):
    """One run's (or one shard's) counts as status.lua reads them."""

    meta: dict[str, str]
    pending: int
    in_flight: int
    dead: int
    now_ms: int
    ttl_ms: int
    durations: layout.Durations


def _metrics(run: str, own: _Counts, shards: Sequence[_Counts]) -> RunMetrics:
    """The status of a run from its own meta hash (`own`: a sharded run's directory) and the
    counts of its shards (a run that is not sharded: its own, alone)."""
    meta = own.meta
    seeded = layout.SEEDED in meta
    pending = sum(s.pending for s in shards)
    in_flight = sum(s.in_flight for s in shards)
    drained = is_drained(seeded, pending, in_flight, layout.OPEN in meta)
    firsts = [int(s.meta[layout.FIRST_LEASE_MS]) for s in shards if layout.FIRST_LEASE_MS in s.meta]
    # A drained run's time stops at its last item, so its rate no longer falls.
    ends = [
        int(s.meta[layout.LAST_FINISHED_MS]) for s in shards if layout.LAST_FINISHED_MS in s.meta
    ]
    end = max(ends) if drained and ends else max(s.now_ms for s in shards)
    elapsed = (end - min(firsts)) / 1000 if firsts else None
    done = _summed(shards, layout.DONE_COUNT)
    histogram = layout.Durations.summed([s.durations for s in shards])
    status = RunStatus(
        run=run,
        seeded=seeded,
        total=int(meta.get(layout.TOTAL, 0)),
        pending=pending,
        in_flight=in_flight,
        done=done,
        dead=sum(s.dead for s in shards),
        retried=_summed(shards, layout.RETRIED),
        released=_summed(shards, layout.RELEASED),
        executions=_summed(shards, layout.EXECUTIONS),
        stale=_summed(shards, layout.STALE),
        elapsed_s=elapsed,
        # Times are whole ms: a run drained within its first one took at most that long.
        rate=done / max(elapsed, 0.001) if elapsed is not None and (elapsed > 0 or done) else None,
        digest=meta.get(layout.DIGEST),
        expires_in_s=own.ttl_ms / 1000 if own.ttl_ms >= 0 else None,
        open=layout.OPEN in meta,
        item_p50_s=histogram.quantile_bound_s(0.5),
        item_p99_s=histogram.quantile_bound_s(0.99),
        shards=len(shards),
    )
    return RunMetrics(status=status, durations=histogram)


def _shards_of(meta: dict[str, str]) -> list[str]:
    """The sub-runs a sharded run's directory (its meta hash, as read) names."""
    return meta[layout.SHARD_RUNS].split(layout.LIST_SEPARATOR)


def _summed(shards: Sequence[_Counts], field: str) -> int:
    return sum(int(s.meta.get(field, 0)) for s in shards)


class Reading(RunHandle):
    """The readers' calls."""

    def total(self) -> int:
        value = self._retried(self.client.hget, self.keys.meta, layout.TOTAL)
        return int(value or 0)

    def is_seeded(self) -> bool:
        """Whether the run is seeded; RunFormatError if another wq version seeded it."""
        return self.seed_state().seeded

    def seed_state(self) -> SeedState:
        """Whether the run is seeded, and with what; RunFormatError if another wq version
        seeded it."""
        fields = (layout.SEEDED, layout.DIGEST, layout.FORMAT, layout.OPEN_DIGEST)
        seeded, digest, fmt, open_digest = cast(
            list[str | None], self._retried(self.client.hmget, self.keys.meta, *fields)
        )
        if fmt != layout.SHARDED_FORMAT:  # a sharded run's directory: its digest is the run's
            self._check_format(seeded is not None, fmt)
        return SeedState(seeded=seeded is not None, digest=open_digest or digest)

    def status(self) -> RunStatus:
        return self.metrics().status

    def metrics(self) -> RunMetrics:
        """The run's counts and its durations histogram, in one atomic read (one per shard of
        a sharded run, summed)."""
        own = self._counts()
        fmt = own.meta.get(layout.FORMAT)
        if fmt == layout.SHARDED_FORMAT:
            shards = [self.shard(run)._counts() for run in _shards_of(own.meta)]
            if any(layout.SEEDED not in shard.meta for shard in shards):
                raise RunLost(self.run)  # a shard's keys are gone: never read as fewer items
            return _metrics(self.run, own, shards)
        self._check_format(layout.SEEDED in own.meta, fmt)
        return _metrics(self.run, own, [own])

    def _counts(self) -> "_Counts":
        k = self.keys
        keys = [k.meta, k.requeue, k.suspects, k.dead, k.durations]
        raw: list[Any] = self._eval(self.scripts.status, keys=keys, args=[])
        flat, requeued, suspects, in_flight, dead, now_ms, ttl_ms, durations = raw
        meta = dict(zip(flat[::2], flat[1::2], strict=True))
        total = int(meta.get(layout.TOTAL, 0))
        cursor = int(meta.get(layout.CURSOR, 0))
        return _Counts(
            meta=meta,
            pending=int(requeued) + int(suspects) + total - cursor,
            in_flight=int(in_flight),
            dead=int(dead),
            now_ms=int(now_ms),
            ttl_ms=int(ttl_ms),
            durations=layout.Durations.of(dict(zip(durations[::2], durations[1::2], strict=True))),
        )

    def returned(self) -> int:
        """Positions that came back (failed, released, expired) and wait to be leased again."""

        def lengths() -> int:
            pipe = self.client.pipeline(transaction=False)
            pipe.llen(self.keys.requeue)
            pipe.llen(self.keys.suspects)
            return sum(int(n) for n in pipe.execute())

        return self.call(lengths)

    def has_keys(self) -> bool:
        """Whether any key of the run but its meta hash exists: when the meta hash is gone, a
        sign that some keys were evicted (purge unlinks them all in one call, and a drained
        run's keys expire at the same moment)."""
        others = self.keys.named[1:]
        return bool(self._retried(self.client.exists, *others))

    def scaling(self) -> Scaling | None:
        """The autoscaler's last decision, if anything autoscales the run."""
        values = cast(
            list[str | None],
            self._retried(self.client.hmget, self.keys.scaling, list(layout.SCALING_FIELDS)),
        )
        if any(v is None for v in values):
            return None
        job, current, target, reason, at_ms = cast(list[str], values)
        return Scaling(job, int(current), int(target), reason, int(at_ms))

    def window(self, first: int, count: int = WINDOW) -> Window:
        """Positions first .. first + count - 1 of the run (fewer at its end) as one atomic
        read: items, ledger records, attempts and errors. `first` is a multiple of WINDOW."""
        k = self.keys
        keys = [k.meta, k.items, k.ledger, k.attempts, k.errors, k.dead]
        raw = cast(
            list[Any], self._retried(self._eval_raw, self.scripts.window, keys, [first, count])
        )
        meta, item_fields, ledger_fields, attempts, errors, dead = raw
        total_b, kind_b, start_b, step_b, chunk_b, seeded_b, format_b = meta
        if format_b == layout.SHARDED_FORMAT.encode():
            raise ShardedRunError(self.run)
        total = int(total_b or 0)
        n = max(0, min(first + count, total) - first)
        if kind_b == layout.KIND_RANGE.encode():
            start, step = int(start_b), int(step_b)
            items = [layout.range_item(start, step, p) for p in range(first, first + n)]
        else:
            size = int(chunk_b or layout.ITEMS_PER_FIELD)
            joined: list[str] = []
            for blob in item_fields:
                joined.extend(layout.split_chunk(blob.decode() if blob else ""))
            skip = first - (first // size) * size
            items = joined[skip : skip + n]
        records: list[layout.Record | None] = []
        for blob in ledger_fields:
            records.extend(layout.split_records(blob))
        skip = first % layout.RECORDS_PER_FIELD
        return Window(
            first=first,
            total=total,
            seeded=seeded_b is not None,
            items=items,
            records=records[skip : skip + n],
            attempts=[int(a or 0) for a in attempts],
            errors=[e.decode() if e is not None else None for e in errors],
            dead=[d.decode() if d is not None else None for d in dead],
        )

    def finish_times(self) -> Iterator[list[int]]:
        """When each finished item (done or dead) was recorded, ms since the epoch: the ledger
        alone, a page of fields per call in no particular order (HSCAN), so that a timeline of
        the run reads neither its items nor its errors."""
        cursor: int | bytes = 0
        while True:
            cursor, fields = cast(
                tuple[bytes, dict[bytes, bytes]],
                self._retried(
                    self.client.execute_command,  # raw: records are bytes, not text
                    "HSCAN",
                    self.keys.ledger,
                    cursor,
                    "COUNT",
                    ADMIN_CHUNK,
                    NEVER_DECODE=True,
                ),
            )
            blobs = fields.values()
            yield [r.finished_ms for blob in blobs for r in layout.split_records(blob) if r]
            if int(cursor) == 0:
                return

    def outputs(self, positions: Sequence[int]) -> dict[int, str]:
        """The outputs of these positions (those that have one), as JSON text, read a few at a
        time so that no reply holds more than about OUTPUT_BYTES_PER_CALL bytes of them
        (HSTRLEN first: a single output bigger than that comes alone)."""
        if not positions:
            return {}
        key = self.keys.outputs

        def lengths() -> list[int]:
            pipe = self.client.pipeline(transaction=False)
            for p in positions:
                pipe.hstrlen(key, str(p))
            return [int(n) for n in pipe.execute()]

        found: dict[int, str] = {}
        batch: list[int] = []
        size = 0
        for p, n in [*zip(positions, self.call(lengths), strict=True), (-1, 0)]:
            if batch and (p < 0 or size + n > OUTPUT_BYTES_PER_CALL):
                values = cast(
                    list[str | None],
                    self._retried(self.client.hmget, key, [str(q) for q in batch]),
                )
                found.update((q, v) for q, v in zip(batch, values, strict=True) if v is not None)
                batch, size = [], 0
            if p >= 0 and n > 0:
                batch.append(p)
                size += n
        return found

    def worker_names(self) -> dict[int, str]:
        """Number in ledger records -> worker id (as many as the run had workers)."""
        names: dict[int, str] = {}
        cursor = 0
        while True:
            cursor, page = cast(
                tuple[int, dict[str, str]],
                self._retried(self.client.hscan, self.keys.workers, cursor, count=ADMIN_CHUNK),
            )
            names.update((int(n), name) for name, n in page.items())
            if int(cursor) == 0:
                return names

    def leased_positions(self) -> set[int]:
        """Positions in a leased batch and not settled (as many as workers hold, whatever the
        run's size); those done already have their ledger record, which readers look at first."""
        held: set[int] = set()
        cursor = 0
        while True:
            cursor, page = cast(
                tuple[int, dict[str, str]],
                self._retried(self.client.hscan, self.keys.batches, cursor, count=ADMIN_CHUNK),
            )
            for record in page.values():
                held.update(layout.batch_positions(record))
            if int(cursor) == 0:
                return held
