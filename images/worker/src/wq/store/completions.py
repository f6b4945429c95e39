"""Successful attempts to record (complete.lua): Finished for one, Completions for a batch under
one lease token, packed for the ledger and cut into calls of bounded size."""

import struct
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import pairwise
from typing import Any, NamedTuple

from wq.store import layout
from wq.store.handle import MAX_BATCH, OUTPUT_BYTES_PER_CALL


class Finished(NamedTuple):
    """A successful attempt whose attempt number is not known to the caller (complete.lua
    counts it): for callers other than the worker, and tests."""

    position: int
    duration_ms: int = layout.UNKNOWN_MS
    output: str | None = None  # JSON text; None: the handler gave none


class Completions:
    """Successful attempts under one lease token, to record in one go (Leases.complete):
    parallel lists, which a worker makes for a whole batch at once; packing them for
    complete.lua (layout.ATTEMPT_FORMAT per item) happens once per call, in C loops."""

    def __init__(
        self,
        positions: list[int],
        attempts: list[int],
        durations_ms: list[int],  # out of range (negative, UNKNOWN_MS or more): not known
        outputs: dict[int, str],  # position -> JSON text, for those that have one
        attempts_known: bool = True,  # False: complete.lua counts them (attempts ignored)
    ) -> None:
        self.positions = positions
        self.attempts = attempts
        self.durations_ms = durations_ms
        self.outputs = outputs
        self.attempts_known = attempts_known

    @classmethod
    def empty(cls) -> "Completions":
        """A batch to append to, item by item (the worker does, as items finish)."""
        return cls([], [], [], {})

    def __len__(self) -> int:
        return len(self.positions)

    def packed(self) -> bytes:
        """Attempt (2 bytes) and duration in ms (4 bytes) per position, big-endian,
        interleaved by extended-slice assignment rather than a Python loop."""
        n = len(self.positions)
        try:
            attempts = struct.pack(f">{n}H", *self.attempts)
            durations = struct.pack(f">{n}I", *self.durations_ms)
        except struct.error:  # out of range: a duration not known, or absurd
            attempts = struct.pack(f">{n}H", *(min(a, _MAX_ATTEMPT) for a in self.attempts))
            durations = struct.pack(f">{n}I", *map(record_ms, self.durations_ms))
        out = bytearray(6 * n)
        for i in range(2):
            out[i::6] = attempts[i::2]
        for i in range(4):
            out[2 + i :: 6] = durations[i::4]
        return bytes(out)

    def in_order(self) -> "Completions":
        """The same successes by position (as a worker's usually are already): complete.lua
        takes them as runs of consecutive positions."""
        positions = self.positions
        if positions == sorted(positions):
            return self
        order = sorted(range(len(positions)), key=positions.__getitem__)
        return Completions(
            [positions[i] for i in order],
            [self.attempts[i] for i in order],
            [self.durations_ms[i] for i in order],
            self.outputs,
            self.attempts_known,
        )

    def runs(self) -> list[int]:
        """first, count of each run of consecutive positions, flat (positions in order)."""
        positions = self.positions
        if not positions:
            return []
        if positions[-1] - positions[0] == len(positions) - 1 and len(set(positions)) == len(
            positions
        ):
            return [positions[0], len(positions)]
        runs = [positions[0], 1]
        for previous, p in pairwise(positions):
            if p == previous + 1:
                runs[-1] += 1
            else:
                runs += (p, 1)
        return runs

    def histogram(self) -> tuple[str, int]:
        """The durations histogram's share of these attempts: "bucket:count" pairs joined by
        commas, and their sum in ms (durations not known left out)."""
        buckets: Counter[int] = Counter()
        total = 0
        for ms, n in Counter(self.durations_ms).items():
            if 0 <= ms < layout.UNKNOWN_MS:
                buckets[bisect_left(layout.DURATION_BUCKETS_MS, ms)] += n
                total += ms * n
        return ",".join(f"{b}:{n}" for b, n in sorted(buckets.items())), total

    def args(self, worker: str) -> list[Any]:
        """complete.lua's ARGV after the token (lease.lua's after the finished batch's), the
        positions in order."""
        part = self.in_order()
        histogram, sum_ms = part.histogram()
        runs = part.runs()
        args: list[Any] = [
            worker,
            "1" if part.attempts_known else "0",
            part.packed(),
            histogram,
            sum_ms,
            len(runs) // 2,
            *runs,
        ]
        for position, output in part.outputs.items():
            args += (position, output)
        return args

    @classmethod
    def of(cls, finished: Iterable[Finished | int]) -> "Completions":
        """Bare positions or Finished tuples: complete.lua counts their attempts."""
        done = [f if isinstance(f, Finished) else Finished(f) for f in finished]
        return cls(
            positions=[f.position for f in done],
            attempts=[0] * len(done),
            durations_ms=[f.duration_ms for f in done],
            outputs={f.position: f.output for f in done if f.output is not None},
            attempts_known=False,
        )

    def calls(self) -> Iterator["Completions"]:
        """Parts of at most MAX_BATCH positions and about OUTPUT_BYTES_PER_CALL characters of
        outputs each (one complete.lua call each)."""
        sizes = {p: len(o) for p, o in self.outputs.items()}
        if len(self.positions) <= MAX_BATCH and sum(sizes.values()) <= OUTPUT_BYTES_PER_CALL:
            yield self
            return
        start = size = 0
        for i, p in enumerate(self.positions):
            grow = sizes.get(p, 0)
            if i > start and (i - start >= MAX_BATCH or size + grow > OUTPUT_BYTES_PER_CALL):
                yield self._part(start, i)
                start, size = i, 0
            size += grow
        yield self._part(start, len(self.positions))

    def _part(self, start: int, end: int) -> "Completions":
        positions = self.positions[start:end]
        return Completions(
            positions,
            self.attempts[start:end],
            self.durations_ms[start:end],
            {p: self.outputs[p] for p in positions if p in self.outputs},
            self.attempts_known,
        )


_MAX_ATTEMPT = 0xFFFF


def record_ms(duration_ms: int) -> int:
    """A duration for a ledger record: UNKNOWN_MS when not known or more than 4 bytes hold."""
    return duration_ms if 0 <= duration_ms < layout.UNKNOWN_MS else layout.UNKNOWN_MS


class Results(NamedTuple):
    """A finished batch's successes, recorded by the call that leases the next batch
    (Leases.lease): one call per batch in the steady state."""

    token: str  # the finished batch's lease token
    worker: str  # worker id, recorded by its number
    done: Completions
