"""The python handler run isolated from the worker: one process per slot (wq.work.child; seen
from here through wq.work.handler_process), started once and reused, each in a session of its
own. When one dies (a signal, the kernel's out-of-memory killer, an exit) or overruns the item
timeout (then it is killed), the item it was running fails at once with the reason, as any
failed attempt does (retried, or dead at --max-attempts); the items queued behind it go to its
successor uncharged, and a new process takes its place.

Fast items cost no round trip each: each process is kept a queue of about WINDOW_S of work,
written to it in batches, and answers in batches too (wq.work.child).
"""

import os
import select
import subprocess
import time
from collections.abc import Sequence

from wq.base.errors import ConfigError, WqError
from wq.base.item import Item
from wq.base.logs import EventLog
from wq.work.handler_process import Child, death_reason, handler_environment, hello, oom_kills
from wq.work.outcome import Ended, HandlerFailed, Outcome, Ran, attempts_in, moving_average

# Items queued in a handler process at once: about this many seconds of work, at most
# MAX_WINDOW items (one at a time for items slower than that).
WINDOW_S = 0.02
MAX_WINDOW = 1024
# Items held back to be written to a process together, unless it is running out of work.
WRITE_BATCH = 32
# How often results(0) looks for answers while items are being handed out.
LOOK_EVERY_S = 0.0005


class HandlerStartFailed(WqError):
    """A handler process that imported the function once could not be started again."""


class HandlerProcesses:
    """The python handler in processes of their own, one per slot: the worker's handler and
    its slots at once (wq.work.slots.Slots), all driven from the worker's main thread."""

    enforces_own_timeout = True

    def __init__(
        self,
        target: str,
        concurrency: int,
        timeout_s: float,
        max_output_bytes: int,
        memory_limit_mib: int = -1,
    ) -> None:

        self.target = target
        self.timeout_ns = int(timeout_s * 1e9)
        self.timeout_s = timeout_s
        self.log = EventLog(level="warning")  # the worker's own, once it takes them on
        self.hello = hello(target, concurrency, max_output_bytes, memory_limit_mib)
        self.env = handler_environment(os.environ)
        self.oom = oom_kills()
        self.item_ns = 0.0  # moving average of an item's time in the function
        self.window = 1  # items queued in one process at once
        self.queued = 0  # in all of them
        self.closed = False
        self.late: list[Ended] = []  # what processes stopped by cancel_all() had finished
        self.children: list[Child] = []
        self.by_fd: dict[int, Child] = {}
        self.poller = select.poll()
        self.looked = 0.0
        try:
            # All started before any is waited for: their interpreters start side by side.
            for _ in range(concurrency):
                self._add(Child(target, self.hello, self.env))
            for child in self.children:
                try:
                    child.ready()
                except ConfigError:
                    self.children.remove(child)  # closed by ready()
                    raise
        except BaseException:
            self.cancel_all()
            raise

    def _add(self, child: Child) -> None:
        self.children.append(child)
        self.by_fd[child.from_child] = child
        self.poller.register(child.from_child, select.POLLIN)

    def _replace(self, child: Child, reason: str, out: list[Ended], charge: bool = True) -> None:
        """Fails the item a dead (or killed) process was running, and starts another."""
        self.poller.unregister(child.from_child)
        del self.by_fd[child.from_child]
        self.children.remove(child)
        index = child.running()
        started = child.running_since() or time.monotonic_ns()
        child.close()
        fields: dict[str, object] = {"pid": child.pid, "error": reason}
        if index is not None and charge:
            token, item = child.item_at(index)
            out.append(Outcome(token, item, reason, time.monotonic_ns() - started))
            fields["position"] = item.run_position
        else:
            index = None
        self.log.warning("handler.died", **fields)
        if reason.startswith("the handler process ran out of memory"):
            self.oom = oom_kills()
        try:
            successor = Child(self.target, self.hello, self.env)
            successor.ready()
        except ConfigError as exc:
            raise HandlerStartFailed(f"the python handler cannot be started again: {exc}") from None
        # Not started, or their answers lost (those before the one charged): not charged.
        for token, items in child.leftovers(skip=index):
            successor.give(token, items)
        self._add(successor)

    # Slots.

    def free(self) -> int:
        return max(0, self.window * len(self.children) - self.queued)

    def busy(self) -> int:
        return self.queued

    def submit(self, token: str, item: Item) -> None:
        self.submit_many(token, [item])

    def submit_many(self, token: str, items: Sequence[Item]) -> int:
        """Shared out in slices, each to the process with the least work queued."""
        children = self.children
        share = -(-len(items) // len(children))
        for start in range(0, len(items), share):
            child = children[0] if len(children) == 1 else min(children, key=Child.queued)
            child.give(token, list(items[start : start + share]))
        self.queued += len(items)
        return len(items)

    def results(self, timeout: float) -> list[Ended]:
        if self.closed:
            late, self.late = self.late, []
            return late
        for child in self.children:
            # Written together when it has work enough; at once when it is about to run out.
            unsent = child.unsent
            if unsent and (child.unanswered < WRITE_BATCH or unsent >= WRITE_BATCH or timeout > 0):
                child.send_pending()
            elif child.unwritten:
                child.flush()
        now = time.monotonic()
        if timeout <= 0 and now - self.looked < LOOK_EVERY_S:
            return []
        self.looked = now
        out: list[Ended] = []
        wait = timeout
        if self.timeout_ns:
            for child in self.children:
                since = child.running_since()
                if since is not None:
                    left = (since + self.timeout_ns - time.monotonic_ns()) / 1e9
                    wait = min(wait, max(0.0, left + 0.001))
        for fd, _ in self.poller.poll(wait * 1000):
            child = self.by_fd[fd]
            alive = child.read()
            before = len(out)
            child.answers(out)
            for ended in out[before:]:
                self._timed(ended.durations_ns if isinstance(ended, Ran) else [ended.duration_ns])
            if alive is False:
                self._replace(child, death_reason(child.kill(), self.oom), out)
        if self.item_ns:
            self.window = max(1, min(MAX_WINDOW, int(WINDOW_S * 1e9 / self.item_ns)))
        if self.timeout_ns:
            self._expire(out)
        if not out and timeout > 0:
            for child in list(self.children):  # dead, its pipe held open by a descendant
                code = child.proc.poll()
                if code is not None:
                    child.kill()
                    child.answers(out)
                    self._replace(child, death_reason(code, self.oom), out)
        self.queued -= attempts_in(out)
        return out

    def _timed(self, durations_ns: Sequence[int]) -> None:
        """The moving average of an item's time, moved by these items'."""
        mean = sum(durations_ns) / len(durations_ns)
        self.item_ns = moving_average(self.item_ns or None, mean, len(durations_ns))

    def _expire(self, out: list[Ended]) -> None:
        for child in list(self.children):
            since = child.running_since()
            if since is None or time.monotonic_ns() - since < self.timeout_ns:
                continue
            child.read()  # answers it wrote meanwhile
            child.answers(out)
            index = child.running()
            if index is None or child.running_since() != since:
                continue  # it finished that item in time
            overran = child.item_at(index)[1]
            child.kill()
            child.answers(out)
            reason = (
                "the handler process did not finish within the item timeout of "
                f"{self.timeout_s:g} s (killed)"
            )
            # Unless it finished that item just in time: then nobody is charged.
            now = child.running()
            charge = now is not None and child.item_at(now)[1] is overran
            self._replace(child, reason, out, charge=charge)

    def interrupt(self) -> None:
        pass  # the main loop waits in poll() at most --flush-interval, then sees the stop

    # Handler.

    def __call__(self, item: Item) -> str | None:
        """One item, alone (the worker uses the slots instead)."""
        self.submit("", item)
        while not (outcomes := self.results(1.0)):
            pass
        [outcome] = outcomes
        if isinstance(outcome, Ran):
            return None
        if outcome.error is not None:
            raise HandlerFailed(outcome.error)
        return outcome.output

    def cancel_all(self) -> None:
        """Graceful shutdown: every process killed at once; what they finished is kept."""
        self.closed = True
        self.queued = 0
        for child in self.children:
            child.kill()
            child.answers(self.late)
            child.close()
        self.children = []

    def close(self) -> None:
        """The run is over: each process reads its end of file and exits."""
        if self.closed:
            return
        self.closed = True
        for child in self.children:
            child.end_input()
        for child in self.children:
            try:
                child.proc.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
            child.close()
        self.children = []
