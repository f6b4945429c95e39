"""Python's garbage collector tuned for a process on the per-item hot path (`wq work`, but
for a python handler run in the worker's own process)."""

import gc

# Allocations between collections of the youngest generation (Python's default: 700).
GC_THRESHOLD = 50_000


def collect_less() -> None:
    """A worker makes a few thousand short-lived tuples a batch, none in a cycle: what is
    loaded by now (modules, the handler) is never scanned again (gc.freeze), and the youngest
    generation is collected every GC_THRESHOLD allocations rather than 700, which scanned each
    batch's items several times. Cycles are still collected, less often."""
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, middle, oldest)
