"""How many worker pods a run wants: a pure function of the run's counts, the Job's size and
the decision before, so that every rule is tested without a cluster or a clock (wq.scale.autoscale
measures, calls decide() and applies what it says).

The rules, in the order decide() applies them:

1. A lost run stops the controller, and so does a drained one (the workers end the Job).
2. The size is kept while the run is not seeded, before any worker has leased an item, and
   while it is stalled: work pending and no item finished for STALL_S seconds (or
   STALL_ITEMS mean item times, if longer). More pods do not help a stuck run, and fewer
   could stop the very pods that hold its items.
3. The size wanted:
   - nothing pending (the tail): the pods that can hold the items in flight, ceil(in flight /
     concurrency); more pods cannot finish running items sooner;
   - `items_per_pod`: ceil((pending + in flight) / items_per_pod);
   - `target_s`: the pods that finish what is left in about target_s at the rate one pod has
     been finishing items: ceil(left / (rate per pod * target_s)); before the rate is
     measured, at `concurrency` items per mean item time, if that is known. Before the first
     item finishes, items have been running for as long as the run has, at least: that lower
     bound gives a lower bound of the pods needed, which may grow the Job but never shrink it.
   Never fewer than the pods that can hold the items in flight (nor, for that reason, more
   than now), unless items are short (a measured mean attempt time of at most CHEAP_REDO_S):
   a stopped pod hands its items back without using up an attempt, but the work it had done
   on them is lost. Short items cost little to redo, so the Job shrinks as the work left
   shrinks; with long (or not yet measured) ones every pod holds items while work is
   pending, so the Job shrinks at the tail, or when pods hold nothing (say, pods that cannot
   be scheduled), and never stops busy pods for being ahead of the target. Then within
   [min_pods, max_pods]. 0 is never used: a Job at parallelism 0 whose controller died would
   never complete.
4. Hysteresis. A size outside [min_pods, max_pods] is corrected at once. Otherwise a change of
   at most TOLERANCE of the current size is ignored (+-1 from 10 pods, +-2 from 20): rates are
   noisy and a pod more or less does not matter there. Up happens at once, since work waits;
   down only once a smaller size has been wanted for a whole cooldown, and then to the largest
   size wanted during it, since stopping a pod throws away the work it had started.
"""

import math
from dataclasses import dataclass, field

from wq.base.errors import ConfigError

TOLERANCE = 0.1
STALL_S = 300.0
STALL_ITEMS = 5
# An attempt at most this long (mean, measured) is cheap to redo: the Job may then stop busy
# pods when fewer finish the work in time; each loses at most about this much work.
CHEAP_REDO_S = 5.0
# More pods than any Job gets: the bound of a size computed from a rate next to nothing.
MOST_PODS = 1_000_000


@dataclass(frozen=True)
class Policy:
    min_pods: int
    max_pods: int
    target_s: float = 600.0  # finish what is left in about this long (unless items_per_pod)
    items_per_pod: int = 0  # above 0: size by the items left instead of by time
    cooldown_s: float = 120.0
    concurrency: int = 1  # items one worker pod runs at once (the workers' --concurrency)

    def __post_init__(self) -> None:
        if not 1 <= self.min_pods <= self.max_pods:
            raise ConfigError(
                f"autoscaling needs 1 <= min <= max pods (got min {self.min_pods}, max "
                f"{self.max_pods})"
            )
        if self.items_per_pod <= 0 and self.target_s <= 0:
            raise ConfigError("autoscaling needs a target: target seconds or items per worker")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1 (got {self.concurrency})")


@dataclass(frozen=True)
class Observation:
    """The run and its worker pods, as the controller last saw them."""

    seeded: bool
    lost: bool  # it was seeded, and its keys are gone
    pending: int
    in_flight: int
    done: int
    dead: int
    rate: float | None  # items finished per second lately; None: not measured yet
    pods: int  # worker pods that were ready while the rate was measured (the fewest)
    idle_s: float | None  # since an item last finished; None: none has, as far as seen
    running_s: float | None  # since the run's first lease; None: no worker leased yet
    item_seconds: float | None = None  # mean time of an attempt, if measured (a histogram)

    @property
    def left(self) -> int:
        return self.pending + self.in_flight

    @property
    def finished(self) -> int:
        return self.done + self.dead

    @property
    def item_s(self) -> float | None:
        """Mean seconds an item takes: measured, else by Little's law (in flight / rate, the
        time an item stays leased); None: not known."""
        if self.item_seconds:
            return self.item_seconds
        return self.in_flight / self.rate if self.rate else None


@dataclass(frozen=True)
class Memory:
    """What decide() keeps between calls: since when a smaller size has been wanted without a
    break, and the largest size wanted since then."""

    lower_since: float | None = None
    lower_size: int = 0


@dataclass(frozen=True)
class Decision:
    target: int
    reason: str
    memory: Memory = field(default_factory=Memory)
    stop: bool = False  # nothing left to scale: the run is drained or lost


def decide(obs: Observation, current: int, policy: Policy, memory: Memory, now: float) -> Decision:
    """The size the worker Job should have now, and why. `now` is any monotonic clock in
    seconds, the same for every call."""
    if obs.lost:
        return Decision(current, "the run was lost (its keys are gone)", stop=True)
    if not obs.seeded:
        return Decision(current, "waiting for the run to be seeded")
    if obs.left == 0:
        return Decision(current, "the run is drained", stop=True)
    low, high = policy.min_pods, policy.max_pods
    if not low <= current <= high:
        target = min(max(current, low), high)
        return Decision(target, f"{current} pod(s) is outside the limits {low}..{high}")
    if obs.pending and _stalled(obs):
        return Decision(
            current,
            f"stalled: {obs.pending} pending, none finished for {obs.idle_s:.0f}s; keeping "
            f"{current} pod(s)",
        )
    wanted, why = _wanted(obs, current, policy)
    if wanted is None:
        return Decision(current, why)
    holding = math.ceil(obs.in_flight / policy.concurrency)
    floor = min(current, holding)
    short = obs.item_seconds is not None and obs.item_seconds <= CHEAP_REDO_S
    if wanted < floor and not short:
        wanted, why = floor, f"{why}; but {obs.in_flight} item(s) in flight need {floor} pod(s)"
    if wanted > high:
        wanted, why = high, f"{why}; at most {high}"
    elif wanted < low:
        wanted, why = low, f"{why}; at least {low}"
    return _steady(wanted, why, current, policy, memory, now)


def _stalled(obs: Observation) -> bool:
    if obs.idle_s is None or obs.finished == 0:
        return False  # nothing finished yet: a start, which _wanted handles
    return obs.idle_s >= max(STALL_S, STALL_ITEMS * (obs.item_s or 0.0))


def _wanted(obs: Observation, current: int, policy: Policy) -> tuple[int | None, str]:
    """The size the work calls for, before the floor, the limits and the hysteresis; None:
    keep the size (and the reason why)."""
    left = obs.left
    if obs.pending == 0:
        holding = math.ceil(obs.in_flight / policy.concurrency)
        return holding, f"tail: nothing pending, {obs.in_flight} item(s) in flight"
    if policy.items_per_pod > 0:
        wanted = math.ceil(left / policy.items_per_pod)
        return wanted, f"{left} item(s) left at {policy.items_per_pod} per pod"
    target = policy.target_s
    if obs.rate and obs.pods:
        per_pod = obs.rate / obs.pods
        wanted = _pods(left, per_pod * target)
        return wanted, (
            f"{left} item(s) left at {per_pod:.3g} item(s)/s per pod: {wanted} pod(s) finish "
            f"them in about {target:g}s"
        )
    if obs.item_seconds:
        # Not measured here yet (the controller just started), but known: a pod finishes
        # `concurrency` items per item time.
        per_pod = policy.concurrency / obs.item_seconds
        wanted = _pods(left, per_pod * target)
        return wanted, (
            f"{left} item(s) left at {obs.item_seconds:.3g}s per item: {wanted} pod(s) finish "
            f"them in about {target:g}s"
        )
    if obs.running_s is None:
        return None, "waiting for the workers to lease items"
    if obs.finished == 0 and obs.running_s > 0:
        # No item has finished in running_s seconds: each takes at least that long, so a pod
        # finishes at most `concurrency` items per running_s seconds.
        at_most = policy.concurrency / obs.running_s
        wanted = _pods(left, at_most * target)
        if wanted > current:
            return wanted, (
                f"no item finished in the first {obs.running_s:.0f}s: {left} item(s) need "
                f"{wanted} pod(s) or more to finish in about {target:g}s"
            )
    return None, "measuring the rate"


def _pods(left: int, per_pod: float) -> int:
    """Pods that finish `left` items when each finishes `per_pod` of them; MOST_PODS when
    that is more, or per_pod is too small to divide by (a float that underflowed to 0)."""
    if per_pod <= 0 or left >= MOST_PODS * per_pod:
        return MOST_PODS
    return math.ceil(left / per_pod)


def _steady(
    wanted: int, why: str, current: int, policy: Policy, memory: Memory, now: float
) -> Decision:
    """Hysteresis: up at once, down after a cooldown, small changes ignored."""
    if abs(wanted - current) <= TOLERANCE * current:
        if wanted != current:
            why = f"{why}; {wanted} is within {TOLERANCE:.0%} of {current}: no change"
        return Decision(current, why)
    if wanted > current:
        return Decision(wanted, why)
    since = now if memory.lower_since is None else memory.lower_since
    size = wanted if memory.lower_since is None else max(wanted, memory.lower_size)
    held = now - since
    if held < policy.cooldown_s:
        return Decision(
            current,
            f"{why}; down to {size} once wanted for {policy.cooldown_s:g}s ({held:.0f}s so far)",
            Memory(since, size),
        )
    if abs(size - current) <= TOLERANCE * current:
        return Decision(current, f"{why}; {size} is within {TOLERANCE:.0%} of {current}")
    return Decision(size, f"{why}; wanted {size} or fewer for {held:.0f}s")
