"""Items finished per time bucket over a run's life, for the web page's items/s chart: read from
the ledger's finish times (Reading.finish_times, a page of records per call), counted per
second, then put in at most MAX_BUCKETS buckets of a round width.

Memory is one counter per second in which an item finished, whatever the run's size.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# Points of the chart, at most: enough for its width in pixels to show the shape.
MAX_BUCKETS = 240
# Bucket widths in seconds, the smallest that keeps the chart under MAX_BUCKETS points wins.
WIDTHS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


@dataclass(frozen=True)
class Timeline:
    start_s: int | None  # epoch second of the first bucket; None: no item finished yet
    bucket_s: int  # width of each bucket
    counts: list[int]  # items finished (done or dead) in each bucket

    def as_dict(self) -> dict[str, object]:
        return {"start_s": self.start_s, "bucket_s": self.bucket_s, "counts": self.counts}


def timeline(pages: Iterable[list[int]]) -> Timeline:
    """The timeline of finish times (ms since the epoch), given a page at a time."""
    per_second: Counter[int] = Counter()
    for page in pages:
        per_second.update(ms // 1000 for ms in page)
    if not per_second:
        return Timeline(start_s=None, bucket_s=1, counts=[])
    first, last = min(per_second), max(per_second)
    span = last - first + 1
    width = next((w for w in WIDTHS_S if span / w <= MAX_BUCKETS), WIDTHS_S[-1])
    start = first - first % width  # round bucket edges: a chart's ticks fall on them
    counts = [0] * ((last - start) // width + 1)
    for second, n in per_second.items():
        counts[(second - start) // width] += n
    return Timeline(start_s=start, bucket_s=width, counts=counts)
