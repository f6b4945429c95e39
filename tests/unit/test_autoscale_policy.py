"""The scaling decision (wq.scale.policy): start, steady state, tail, stall, lost, limits and
hysteresis, each on made-up observations (the function is pure: no Redis, no cluster)."""

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wq.base.errors import ConfigError
from wq.scale.policy import (
    CHEAP_REDO_S,
    STALL_S,
    Decision,
    Memory,
    Observation,
    Policy,
    decide,
)

POLICY = Policy(min_pods=1, max_pods=10, target_s=600, cooldown_s=120)

# A run of 10,000 items, half done, 5 pods finishing 2 items/s each (10/s in all): the 5,000
# left take 500s at that rate, within the 600s target.
RUNNING = Observation(
    seeded=True,
    lost=False,
    pending=4995,
    in_flight=5,
    done=5000,
    dead=0,
    rate=10.0,
    pods=5,
    idle_s=0.5,
    running_s=500.0,
)


def step(
    obs: Observation,
    current: int,
    policy: Policy = POLICY,
    memory: Memory | None = None,
    now: float = 1000.0,
) -> Decision:
    return decide(obs, current, policy, memory or Memory(), now)


# --- start ----------------------------------------------------------------------------------


def test_not_seeded_keeps_the_size() -> None:
    d = step(replace(RUNNING, seeded=False, pending=0, in_flight=0, done=0), 3)
    assert (d.target, d.stop) == (3, False)
    assert "seeded" in d.reason


def test_no_lease_yet_keeps_the_size() -> None:
    fresh = replace(RUNNING, pending=1000, in_flight=0, done=0, rate=None, running_s=None)
    d = step(fresh, 3)
    assert d.target == 3
    assert "waiting for the workers" in d.reason


def test_start_grows_with_the_time_no_item_has_finished() -> None:
    """1,000 items, none finished after t seconds: each takes t or more, so finishing them in
    600s needs 1000 * t / 600 pods or more (one item at a time per pod)."""
    starting = replace(RUNNING, pending=997, in_flight=3, done=0, rate=None, idle_s=None)
    early = step(replace(starting, running_s=1.0), 3)
    assert early.target == 3  # ceil(1000 * 1 / 600) = 2: a lower bound never shrinks the Job
    assert "measuring" in early.reason
    later = step(replace(starting, running_s=3.6), 3)
    assert later.target == 6  # ceil(1000 * 3.6 / 600)
    assert "no item finished in the first 4s" in later.reason
    assert step(replace(starting, running_s=60.0), 3).target == 10  # max


def test_start_counts_each_pods_concurrency() -> None:
    starting = replace(RUNNING, pending=997, in_flight=3, done=0, rate=None, running_s=3.6)
    assert step(starting, 2, replace(POLICY, concurrency=2)).target == 3  # ceil(6 / 2)


def test_a_known_item_time_sizes_the_job_before_the_rate_is_measured() -> None:
    """A controller that has just started, on a run whose items take 3s each (a histogram
    says): a pod finishes 1/3 item/s; 5000 left in 600s need 25 pods, at most 10."""
    d = step(replace(RUNNING, rate=None, item_seconds=3.0), 4)
    assert d.target == 10
    assert d.reason.startswith("5000 item(s) left at 3s per item: 25 pod(s) finish them")
    assert d.reason.endswith("; at most 10")


def test_a_known_item_time_sets_how_long_a_stall_is() -> None:
    slow = replace(RUNNING, rate=0.0, idle_s=400.0, item_seconds=100.0)
    assert "stalled" not in step(slow, 5).reason  # 5 item times: 500s
    assert "stalled" in step(replace(slow, idle_s=500.0), 5).reason


def test_no_rate_after_items_finished_keeps_the_size() -> None:
    d = step(replace(RUNNING, rate=None), 4)
    assert (d.target, d.reason) == (4, "measuring the rate")


# --- steady state ---------------------------------------------------------------------------


def test_steady_state_keeps_the_size() -> None:
    d = step(RUNNING, 5)
    assert d.target == 5
    assert d.reason == (
        "5000 item(s) left at 2 item(s)/s per pod: 5 pod(s) finish them in about 600s"
    )
    assert d.memory == Memory()


def test_more_work_than_the_pods_finish_in_time_scales_up_at_once() -> None:
    d = step(replace(RUNNING, pending=7995), 5)  # 8000 left at 2/s per pod: 7 pods
    assert d.target == 7
    assert "7 pod(s) finish them in about 600s" in d.reason


def test_rate_per_pod_uses_the_pods_that_made_it() -> None:
    """The same rate from more pods means slower pods: more are needed."""
    assert step(replace(RUNNING, pods=10), 5).target == 9  # 5000 left / (1 per s * 600s)


def test_items_per_pod_target() -> None:
    policy = replace(POLICY, items_per_pod=1000)
    assert step(replace(RUNNING, rate=None), 2, policy).target == 5  # 5000 left
    fewer = replace(RUNNING, pending=2998, in_flight=2, rate=None)  # 3000 left, 2 pods busy
    assert step(fewer, 5, policy).target == 5  # the cooldown starts
    assert step(fewer, 5, policy, Memory(0.0, 3)).target == 3


# --- tail -----------------------------------------------------------------------------------


def test_tail_goes_down_to_the_pods_holding_items_after_the_cooldown() -> None:
    tail = replace(RUNNING, pending=0, in_flight=3, done=9997)
    first = step(tail, 8, now=1000.0)
    assert first.target == 8
    assert "tail: nothing pending, 3 item(s) in flight" in first.reason
    assert "down to 3 once wanted for 120s (0s so far)" in first.reason
    second = step(tail, 8, memory=first.memory, now=1120.0)
    assert second.target == 3
    assert "wanted 3 or fewer for 120s" in second.reason


def test_tail_keeps_a_slot_for_every_item_in_flight() -> None:
    tail = replace(RUNNING, pending=0, in_flight=3, done=9997)
    policy = replace(POLICY, concurrency=2)
    assert step(tail, 8, policy, Memory(0.0, 2)).target == 2  # ceil(3 / 2)


def test_never_below_the_pods_that_hold_the_items_in_flight() -> None:
    """1,000 items left and each pod takes 1,000 per target: 1 pod would do, but 4 are running
    items; stopping them would throw their work away."""
    obs = replace(RUNNING, pending=996, in_flight=4, rate=4.0, pods=4)
    d = step(obs, 6, replace(POLICY, items_per_pod=1000), Memory(0.0, 1))
    assert d.target == 4
    assert "4 item(s) in flight need 4 pod(s)" in d.reason


def test_short_items_let_the_job_shrink_below_the_busy_pods() -> None:
    """The same run with 50 ms items: a stopped pod loses 50 ms of work (its items go back
    uncharged), so the Job follows the work left down, after the cooldown."""
    obs = replace(RUNNING, pending=996, in_flight=4, rate=4.0, pods=4, item_seconds=0.05)
    d = step(obs, 6, replace(POLICY, items_per_pod=1000), Memory(0.0, 1))
    assert d.target == 1
    long_items = replace(obs, item_seconds=CHEAP_REDO_S + 1)
    assert step(long_items, 6, replace(POLICY, items_per_pod=1000), Memory(0.0, 1)).target == 4


def test_items_in_flight_never_grow_the_job() -> None:
    """Batched leases can put more items in flight than pods: that is no reason to grow."""
    obs = replace(RUNNING, pending=100, in_flight=400, rate=10.0, pods=3)
    assert step(obs, 3, replace(POLICY, items_per_pod=1000)).target == 3


def test_drained_run_stops() -> None:
    d = step(replace(RUNNING, pending=0, in_flight=0, done=10000), 3)
    assert (d.target, d.stop) == (3, True)
    assert d.reason == "the run is drained"


# --- stalled and lost -----------------------------------------------------------------------


def test_stalled_run_keeps_its_size() -> None:
    stalled = replace(RUNNING, rate=0.0, idle_s=STALL_S)
    d = step(stalled, 5)
    assert d.target == 5
    assert d.reason == "stalled: 4995 pending, none finished for 300s; keeping 5 pod(s)"
    assert step(stalled, 5, memory=Memory(0.0, 2)).memory == Memory()  # a stall resets it


def test_slow_items_are_not_a_stall() -> None:
    """10 items in flight finishing 1 per 100s: an item takes about 1000s; 300s without a
    finish is normal then (a stall is 5 mean item times without one)."""
    slow = replace(RUNNING, pending=50, in_flight=10, rate=0.01, pods=10, idle_s=400.0)
    assert "stalled" not in step(slow, 10).reason
    assert "stalled" in step(replace(slow, idle_s=5000.0), 10).reason


def test_lost_run_stops() -> None:
    d = step(replace(RUNNING, seeded=False, lost=True), 5)
    assert (d.target, d.stop) == (5, True)
    assert "lost" in d.reason


# --- limits ---------------------------------------------------------------------------------


def test_never_above_max() -> None:
    d = step(replace(RUNNING, pending=99995), 5)
    assert d.target == 10
    assert d.reason.endswith("; at most 10")


def test_never_below_min() -> None:
    policy = replace(POLICY, min_pods=3)
    d = step(replace(RUNNING, pending=0, in_flight=1), 5, policy, Memory(0.0, 1))
    assert d.target == 3
    assert "; at least 3;" in d.reason


@pytest.mark.parametrize(("rate", "pods"), [(2.2e-308, 481), (5e-324, 2)])
def test_a_rate_next_to_nothing_asks_for_the_most(rate: float, pods: int) -> None:
    """Found by the property test below: left / (rate / pods * target) overflowed, and a rate
    per pod that underflowed to 0 divided by zero."""
    d = step(replace(RUNNING, rate=rate, pods=pods), 1)
    assert d.target == 10
    assert "1000000 pod(s) finish them" in d.reason


def test_a_size_outside_the_limits_is_corrected_at_once() -> None:
    assert step(RUNNING, 30).target == 10
    assert step(RUNNING, 1, replace(POLICY, min_pods=4)).target == 4
    assert "outside the limits 1..10" in step(RUNNING, 30).reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_pods": 0, "max_pods": 3}, "1 <= min <= max"),
        ({"min_pods": 4, "max_pods": 3}, "min 4, max 3"),
        ({"min_pods": 1, "max_pods": 3, "target_s": 0}, "needs a target"),
        ({"min_pods": 1, "max_pods": 3, "concurrency": 0}, "concurrency"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy(**kwargs)


# --- hysteresis -----------------------------------------------------------------------------


def test_a_change_within_the_tolerance_is_ignored() -> None:
    """+-1 from 10 pods: 11 wanted is within 10% of 10."""
    d = step(replace(RUNNING, pending=12000), 10, replace(POLICY, max_pods=20))
    assert d.target == 10
    assert "11 is within 10% of 10: no change" in d.reason
    assert step(replace(RUNNING, pending=11000), 9).target == 10  # below 10 pods every pod counts


def wants(pods: int) -> Observation:
    """Work for `pods` pods at 2 items/s each within 600s, one item in flight: the others
    hold nothing (unscheduled, say), so the Job may shrink."""
    return replace(RUNNING, pending=pods * 1200 - 1, in_flight=1)


def test_down_waits_for_the_cooldown_and_takes_the_largest_size_wanted() -> None:
    memory = Memory()
    for now, pods in [(0.0, 2), (40.0, 4), (80.0, 3), (119.0, 2)]:
        d = step(wants(pods), 8, memory=memory, now=now)
        assert d.target == 8, now
        memory = d.memory
    assert memory == Memory(0.0, 4)
    d = step(wants(2), 8, memory=memory, now=120.0)
    assert d.target == 4
    assert d.memory == Memory()


def test_wanting_the_size_again_restarts_the_cooldown() -> None:
    d = step(wants(2), 8, now=0.0)
    assert d.memory == Memory(0.0, 2)
    d = step(wants(8), 8, memory=d.memory, now=60.0)
    assert (d.target, d.memory) == (8, Memory())
    d = step(wants(2), 8, memory=d.memory, now=100.0)
    assert (d.target, d.memory) == (8, Memory(100.0, 2))


def test_no_cooldown_scales_down_at_once() -> None:
    assert step(wants(2), 8, replace(POLICY, cooldown_s=0)).target == 2


def test_up_is_never_delayed_by_a_pending_scale_down() -> None:
    d = step(wants(2), 8, now=0.0)
    assert step(wants(10), 8, memory=d.memory, now=1.0).target == 10


def test_a_noisy_rate_does_not_flap() -> None:
    """A rate that swings by +-25% every minute around what 6 pods need: up once (at once),
    never down again (no smaller size is wanted for a whole cooldown)."""
    memory, current, sizes = Memory(), 6, []
    for i in range(100):
        obs = replace(wants(6), rate=10.0 * (1 + 0.25 * math.sin(i)))
        d = step(obs, current, memory=memory, now=10.0 * i)
        memory, current = d.memory, d.target
        sizes.append(current)
    assert len({*sizes}) <= 2
    assert sizes == sorted(sizes)


# --- whatever it sees -----------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=100_000)


@settings(max_examples=1000)
@given(
    pending=counts,
    in_flight=counts,
    done=counts,
    rate=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
    pods=st.integers(min_value=0, max_value=500),
    running_s=st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
    current=st.integers(min_value=1, max_value=200),
    min_pods=st.integers(min_value=1, max_value=20),
    extra=st.integers(min_value=0, max_value=50),
    items_per_pod=st.sampled_from([0, 1, 100]),
    concurrency=st.integers(min_value=1, max_value=8),
    lower_since=st.one_of(st.none(), st.floats(min_value=0, max_value=2000)),
    item_seconds=st.one_of(st.none(), st.floats(min_value=0.001, max_value=1e5)),
)
def test_any_decision_stays_within_the_rules(
    pending: int,
    in_flight: int,
    done: int,
    rate: float | None,
    pods: int,
    running_s: float | None,
    current: int,
    min_pods: int,
    extra: int,
    items_per_pod: int,
    concurrency: int,
    lower_since: float | None,
    item_seconds: float | None,
) -> None:
    policy = Policy(min_pods, min_pods + extra, 600, items_per_pod, 120, concurrency)
    obs = Observation(
        True, False, pending, in_flight, done, 0, rate, pods, 10.0, running_s, item_seconds
    )
    memory = Memory(lower_since, 1) if lower_since is not None else Memory()
    d = decide(obs, current, policy, memory, 1000.0)
    assert d.stop == (pending + in_flight == 0)
    if d.stop:
        return
    assert policy.min_pods <= d.target <= policy.max_pods
    short = item_seconds is not None and item_seconds <= CHEAP_REDO_S
    if d.target < current and not short:  # shrinking keeps a slot for every item in flight
        assert d.target >= min(current, math.ceil(in_flight / concurrency), policy.max_pods)
