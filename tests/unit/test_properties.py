"""Property tests: random sequences of queue operations against a model of what must hold."""

import itertools
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.unit.conftest import make_queue
from wq.base.errors import ConfigError
from wq.base.item import encode
from wq.read.ledger import DEAD, DONE, IN_FLIGHT, PENDING, iter_records
from wq.seed.seeder import seed_items
from wq.store.leases import FailOutcome, Reaped

MAX_ATTEMPTS = 2
_machines = itertools.count()

items_strategy = st.lists(
    st.one_of(
        st.text(max_size=8),
        st.integers(),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    ),
    max_size=12,
)


class QueueModel(RuleBasedStateMachine):
    """Each position is in exactly one state: pending (in the requeue list, the suspects list
    or not leased yet), held by a token, done or dead; and the queue leases exactly what the
    model says it must."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.queue = make_queue(url, f"prop-{time.monotonic_ns()}-{next(_machines)}")
        self.values: list[object] = []
        self.held: dict[str, set[int]] = {}
        self.attempts: dict[int, int] = {}  # charged attempts
        self.requeue: list[int] = []  # came back after a failure or a release
        self.suspects: list[int] = []  # came back from an expired lease of several
        self.cursor = 0  # next fresh position
        self.solo: dict[str, int] = {}  # token -> its one position
        self.done: set[int] = set()
        self.dead: set[int] = set()
        self.tokens = itertools.count()

    def teardown(self) -> None:
        self.queue.admin.purge()
        self.queue.close()

    @initialize(values=items_strategy)
    def seed(self, values: list[object]) -> None:
        self.values = values
        seed_items(self.queue, [encode(v) for v in values])
        # Seeding the run again changes nothing: with the same items it is a no-op, with
        # other items an error.
        assert not seed_items(self.queue, [encode(v) for v in values]).seeded_now
        if [encode(v) for v in values] != [encode("intruder")]:
            with pytest.raises(ConfigError, match="already seeded with different items"):
                seed_items(self.queue, [encode("intruder")])

    def _expected_lease(self, n: int) -> list[int]:
        if n == 0:
            return []
        expected, self.requeue = self.requeue[:n], self.requeue[n:]
        if not expected and self.suspects:
            return [self.suspects.pop(0)]  # a suspect is leased alone
        fresh = min(n - len(expected), len(self.values) - self.cursor)
        expected += range(self.cursor, self.cursor + fresh)
        self.cursor += fresh
        return expected

    def _lease(self, n: int, lease_s: float) -> tuple[str, list[int]]:
        token = f"t{next(self.tokens)}"
        expected = self._expected_lease(n)
        reply = self.queue.leases.lease(n, lease_s, token)
        positions = []
        for item in reply.items:
            assert item.value == self.values[item.position]
            assert item.attempt == self.attempts.get(item.position, 0) + 1
            positions.append(item.position)
        assert positions == expected
        if positions:
            self.held[token] = set(positions)
        if len(positions) == 1:
            self.solo[token] = positions[0]
        return token, positions

    def _pending_count(self) -> int:
        return len(self.requeue) + len(self.suspects) + len(self.values) - self.cursor

    @rule(n=st.integers(0, 5))
    def lease(self, n: int) -> None:
        self._lease(n, 30)

    @rule(n=st.integers(1, 5))
    def lease_then_die(self, n: int) -> None:
        """A worker leases and is never heard from again: its leases expire and are reaped."""
        token, positions = self._lease(n, 0.001)
        time.sleep(0.005)  # the lease's length, on the server's clock
        reaped = self.queue.leases.reap(MAX_ATTEMPTS)
        self.held.pop(token, None)
        expected_dead = set()
        if self.solo.pop(token, None) is not None:
            # Alone in its lease: its worker died running it, which costs an attempt.
            [p] = positions
            self.attempts[p] = self.attempts.get(p, 0) + 1
            if self.attempts[p] >= MAX_ATTEMPTS:
                expected_dead = {p}
            else:
                self.suspects.append(p)
        else:
            # Several: none is charged; each comes back to be leased alone, in the order
            # they were leased.
            self.suspects += positions
        assert reaped == Reaped(
            requeued=len(positions) - len(expected_dead), dead=len(expected_dead)
        )
        self.dead |= expected_dead

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(sorted(self.held)))
        chosen = data.draw(st.sets(st.sampled_from(sorted(self.held[token])), min_size=1))
        assert self.queue.leases.complete(token, "w", sorted(chosen)) == []
        # A second completion of the same items is stale and changes nothing.
        assert sorted(self.queue.leases.complete(token, "w", sorted(chosen))) == sorted(chosen)
        self._drop(token, chosen)
        self.done |= chosen

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(sorted(self.held)))
        position = data.draw(st.sampled_from(sorted(self.held[token])))
        verdict = self.queue.leases.fail(token, position, "boom", MAX_ATTEMPTS)
        self.attempts[position] = self.attempts.get(position, 0) + 1
        dead = self.attempts[position] >= MAX_ATTEMPTS
        assert verdict is (FailOutcome.DEAD if dead else FailOutcome.RETRY)
        self._drop(token, {position})
        if verdict is FailOutcome.DEAD:
            self.dead.add(position)
        else:
            self.requeue.append(position)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(sorted(self.held)))
        chosen = data.draw(st.sets(st.sampled_from(sorted(self.held[token])), min_size=1))
        assert self.queue.leases.release(token, sorted(chosen)) == len(chosen)
        self.requeue = sorted(chosen) + self.requeue  # first in line, in the order given
        self._drop(token, chosen)

    def _drop(self, token: str, positions: set[int]) -> None:
        self.held[token] -= positions
        if not self.held[token]:
            del self.held[token]
            self.solo.pop(token, None)

    @invariant()
    def counts_partition_the_items(self) -> None:
        if not self.values and not self.queue.reading.is_seeded():
            return
        s = self.queue.reading.status()
        in_flight = sum(len(p) for p in self.held.values())
        assert s.total == len(self.values)
        assert (s.in_flight, s.done, s.dead) == (in_flight, len(self.done), len(self.dead))
        assert s.pending == self._pending_count()
        assert s.pending + s.in_flight + s.done + s.dead == s.total
        assert s.drained == (s.pending == 0 and in_flight == 0)

    @invariant()
    def records_say_where_each_item_is(self) -> None:
        if not self.queue.reading.is_seeded():
            return
        held = set().union(*self.held.values())
        expected = [
            DONE
            if p in self.done
            else DEAD
            if p in self.dead
            else IN_FLIGHT
            if p in held
            else PENDING
            for p in range(len(self.values))
        ]
        records = list(iter_records(self.queue))
        assert [r.state for r in records] == expected
        assert [r.item for r in records] == [encode(v) for v in self.values]
        for r in records:
            charged = self.attempts.get(r.position, 0)
            assert r.attempts == (charged + 1 if r.state == DONE else charged)


def test_queue_operations_keep_every_item_accounted_for(redis_url: str) -> None:
    run_state_machine_as_test(
        lambda: QueueModel(redis_url),
        settings=settings(
            max_examples=60,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
