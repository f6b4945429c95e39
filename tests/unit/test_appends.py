"""The appends role's replies against a real Redis: each refusal of append.lua, the seal's
outcomes and a progressive seeder's progress, by name (the policy: test_open_runs)."""

from wq.base.item import encode
from wq.seed.seeder import seed_items
from wq.store import layout
from wq.store.appends import Appended, AppendRefusal, Progress, SealOutcome, SealReply
from wq.store.queue import RunQueue


def fields(values: list[str], total: int) -> list[tuple[int, str]]:
    """The items hash fields that append `values` to a run of `total` items."""
    return list(layout.chunk_fields([encode(v) for v in values], layout.ITEMS_PER_FIELD, total))


def test_each_append_refusal_is_its_enum_member(queue: RunQueue) -> None:
    appends = queue.appends
    assert appends.append(0, fields(["a"], 0), 1) is AppendRefusal.NOT_SEEDED
    seed_items(queue, [], open_run=True)
    assert appends.append(0, fields(["a"], 0), 1) == Appended(total=1)
    # Laid out for a total that another appender has moved on from.
    assert appends.append(0, fields(["b"], 0), 1) is AppendRefusal.TOTAL_CHANGED
    # A progressive seeder that read a progress of 5 when the run records none.
    progress = (5, "digest-of-6")
    assert appends.append(1, fields(["b"], 1), 1, progress) is AppendRefusal.PROGRESS_CHANGED
    assert appends.append(1, fields(["b"], 1), 1) == Appended(total=2)
    appends.seal()
    assert appends.append(2, fields(["c"], 2), 1) is AppendRefusal.SEALED
    assert queue.reading.status().total == 2  # nothing of a refused append went in


def test_a_progressive_append_records_its_progress(queue: RunQueue) -> None:
    assert queue.appends.progress() == Progress(items=0, digest=None)
    seed_items(queue, [], open_run=True)
    assert queue.appends.progress() == Progress(items=0, digest=None)
    assert queue.appends.append(0, fields(["a", "b"], 0), 2, (0, "d2")) == Appended(total=2)
    assert queue.appends.progress() == Progress(items=2, digest="d2")
    assert queue.appends.append(2, fields(["c"], 2), 1, (2, "d3")) == Appended(total=3)
    assert queue.appends.progress() == Progress(items=3, digest="d3")


def test_seal_replies_say_what_the_seal_did(queue: RunQueue) -> None:
    not_seeded = SealReply(SealOutcome.NOT_SEEDED, total=0, digest=None, was_open=False)
    assert queue.appends.seal() == not_seeded
    seed_items(queue, [], open_run=True)
    queue.appends.append(0, fields(["a", "b"], 0), 2)
    now = SealReply(SealOutcome.SEALED_NOW, total=2, digest=None, was_open=True)
    assert queue.appends.seal() == now
    # Sealed, its digest not recorded yet (a seal interrupted before it): None.
    before = SealReply(SealOutcome.SEALED_BEFORE, total=2, digest=None, was_open=True)
    assert queue.appends.seal() == before
    queue.appends.record_digest("d")
    assert queue.appends.seal() == before._replace(digest="d")


def test_a_run_never_open_is_sealed_before_and_keeps_its_digest(queue: RunQueue) -> None:
    seeded = seed_items(queue, [encode("a")])
    assert queue.appends.seal() == SealReply(
        SealOutcome.SEALED_BEFORE, total=1, digest=seeded.digest, was_open=False
    )
