"""The worker: lease items in adaptive batches, run the handler, record results, and exit 0
only when the run is drained (nothing pending, nothing in flight anywhere) and sealed: on an
open run (wq.seed.open_runs) it waits, polling, for more items or the seal.

While other workers still hold leases it keeps polling and reaping, so an item whose worker
died is picked up by a survivor. On a sharded run (`wq seed --shards`) it works its home shard
first (from its id), then each other shard in turn until nothing is pending there, then waits
on each for its drain. SIGTERM releases every lease it holds at once, without using
up an attempt, and exits 143. Whichever way it ends (drained, dead items, lost, stopped), it
says what it did once (wq.work.summary).
"""

import os
import secrets
import signal
import socket
import threading
import time
from types import FrameType

from wq.base.collector import collect_less
from wq.base.errors import RunLost
from wq.base.logs import EventLog
from wq.base.options import WorkerConfig
from wq.store import shard_layout
from wq.store.handle import MAX_BATCH, Directory
from wq.store.leases import Reaped
from wq.store.queue import RunQueue
from wq.work.backlog import Backlog
from wq.work.handlers import Handler, build_handler
from wq.work.held import Heartbeat, Held
from wq.work.outcome import Ran
from wq.work.recorder import Recorder
from wq.work.seed_wait import check_seeder, wait_seeded
from wq.work.shard_walk import Left, OrphanWatch, home_first, walk
from wq.work.slots import InlineSlots, Slots, StopRequested, ThreadSlots
from wq.work.summary import WorkerSummary, write_termination_message
from wq.work.supervisor import HandlerProcesses

EXIT_DRAINED = 0
EXIT_DEAD_ITEMS = 3
EXIT_STOPPED = 128 + signal.SIGTERM


class Worker:
    def __init__(
        self, queue: RunQueue, handler: Handler, config: WorkerConfig, log: EventLog
    ) -> None:
        self.run_queue = queue  # the run; self.queue: the shard being worked (or the run)
        self.queue = queue
        self.handler = handler
        self.config = config
        self.worker_id = config.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.log = log.bind(run=queue.run, worker=self.worker_id)
        self.stop = threading.Event()
        self.held = Held()
        self.slots: Slots
        if isinstance(handler, HandlerProcesses):  # slots of their own: processes
            handler.log = self.log
            self.slots = handler
        elif config.concurrency == 1:
            self.slots = InlineSlots(handler, config.item_timeout_s, config.record_at_once_s)
        else:
            self.slots = ThreadSlots(handler, config.concurrency)
        self.recorder = Recorder(queue, self.held, config, self.worker_id, self.log)
        self.backlog = Backlog(queue, self.slots, self.held, config.record_at_once_s, self.log)
        self.started = time.monotonic()
        self.orphans: OrphanWatch | None = None  # a sharded run's (_work_shards)
        # The log says once per empty spell that an open run is waited on, and every 10 s
        # (monotonic) what is pending: once for all shards of a sharded run.
        self.told_open = False
        self.next_note = 0.0

    # Signals.

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stop.is_set():
            self.log.info("stop.requested", signal=signal.Signals(signum).name)
        self.stop.set()
        self.slots.interrupt()

    # The run.

    def run(self) -> int:
        c = self.config
        self.log.info(
            "worker.start",
            lease_s=c.lease_s,
            concurrency=c.concurrency,
            max_attempts=c.max_attempts,
            item_timeout_s=c.item_timeout_s,
        )
        self.started = time.monotonic()
        self.heartbeat = heartbeat = Heartbeat(self.queue, self.held, c, self.log)
        try:
            wait_seeded(self.queue, self.config.seed_wait_s, self.stop, self.log)
            heartbeat.start()
            directory = self.queue.directory()
            code = self._work_shards(directory) if directory.runs else self._loop()
            if not isinstance(code, int):
                code = self._finish()
        except StopRequested:
            code = self._shutdown()
        except RunLost as exc:
            self._summarize("lost", exc.exit_code)
            raise
        finally:
            heartbeat.stopped.set()
            self.slots.close()
        reasons = {EXIT_DRAINED: "drained", EXIT_DEAD_ITEMS: "dead_items", EXIT_STOPPED: "stopped"}
        self._summarize(reasons[code], code)
        return code

    def _summarize(self, reason: str, code: int) -> None:
        summary = WorkerSummary(
            worker=self.worker_id,
            run=self.run_queue.run,
            reason=reason,
            exit_code=code,
            processed=self.recorder.processed,
            failed=self.recorder.failed,
            attempts=self.recorder.attempts,
            busy_s=self.recorder.busy_ns / 1e9,
            seconds=time.monotonic() - self.started,
        )
        self.log.info("worker.summary", **summary.fields())
        write_termination_message(self.config.termination_log, summary.line())

    def _work_shards(self, directory: Directory) -> int | None:
        """A sharded run, shard by shard (wq.work.shard_walk); None once all are drained."""
        runs = directory.runs
        order = home_first(runs, self.worker_id)
        self.log.info("shards.home", shard=order[0], shards=len(runs))
        queues = {run: self.run_queue.shard(run) for run in order}
        total = self.queue.reading.total()
        for k, run in enumerate(runs):
            queues[run].leases.run_positions = shard_layout.run_positions(
                k, len(runs), directory.striped, total
            )
        c = self.config
        self.orphans = OrphanWatch(queues, c.max_attempts, c.lease_s, self.log)
        self.heartbeat.watch = self.orphans

        def work_on(run: str, until_drained: bool) -> int | Left:
            self._bind(queues[run])
            return self._loop(leave_when_empty=not until_drained)

        code = walk(order, work_on, self.orphans)
        self._bind(self.run_queue)
        return code

    def _bind(self, queue: RunQueue) -> None:
        """Work on `queue` (a shard) from now on. Called between shards, when this worker
        holds no lease, runs no item and has recorded every result."""
        self.queue = self.recorder.queue = self.backlog.queue = self.heartbeat.queue = queue

    def _loop(self, leave_when_empty: bool = False) -> int | Left:
        """Works on self.queue until it is drained, or, with `leave_when_empty`, until nothing
        is pending there, or, on a sharded run, until another shard needs this worker more
        (shard_walk); the exit code if the worker stops before."""
        while True:
            if self.stop.is_set():
                return self._shutdown()
            self.backlog.hand_out(self.recorder.item_seconds)
            # Waits for a result only while no item can start (every slot taken, or none to start).
            startable = self.backlog and self.slots.free() > 0
            wait = 0.0 if startable or not self.slots.busy() else self.config.flush_interval_s
            self.recorder.record_all(self.slots.results(wait))
            if self.backlog or self.slots.free() == 0:
                if self.recorder.flush_due():
                    self.recorder.flush()
                continue

            if self.orphans is not None and self.orphans.pending(self.queue.run):
                if self.slots.busy():
                    continue  # its items finish first: no lease is left behind
                self.recorder.flush()
                return Left.FOR_ORPHANS

            # One call per batch in the steady state: the results of the batch just finished
            # are recorded by the call that leases the next.
            results = self.recorder.flush_but_one()
            token = secrets.token_hex(8)
            leased_at = time.monotonic()
            reply = self.queue.leases.lease(self._batch_size(), self.config.lease_s, token, results)
            if results is not None:
                self.recorder.recorded(results, reply.stale)
            if not reply.seeded:
                self.log.error("run.lost", hint="the run was seeded and its keys are gone")
                raise RunLost(self.run_queue.run)
            reaped = Reaped(requeued=0, dead=0)
            if reply.expired_leases:
                reaped = self.queue.leases.reap(
                    self.config.max_attempts, grace_s=self.config.lease_s
                )
                if not reaped.held_back:
                    self.log.info("leases.reaped", requeued=reaped.requeued, dead=reaped.dead)
            if reply.items:
                self.told_open = False
                self.held.add(
                    token, [i.position for i in reply.items], leased_at + self.config.lease_s
                )
                self.backlog.add(token, reply.items)
                continue
            if reply.expired_leases and not reaped.held_back:
                continue
            if self.slots.busy():
                continue
            if reply.drained:
                return Left.DRAINED
            if leave_when_empty and reply.pending == 0:
                return Left.EMPTY
            if reply.open and reply.pending == reply.in_flight == 0:
                check_seeder(self.run_queue.run, reply.now_ms, reply.seeder_ms, self.config)
                if not self.told_open:
                    self.log.info(
                        "run.open",
                        hint=f"waiting for items or `wq seal --run {self.run_queue.run}`",
                    )
                    self.told_open = True
            now = time.monotonic()
            if now >= self.next_note:
                self.log.info("waiting", pending=reply.pending, in_flight=reply.in_flight)
                self.next_note = now + 10
            # Leases held back after a restart of Redis: look again in a poll, not at once.
            until_deadline = None if reaped.held_back else reply.seconds_to_next_deadline()
            pause = (
                self.config.poll_s
                if until_deadline is None
                else min(self.config.poll_s, until_deadline + 0.01)
            )
            self.stop.wait(pause)
            if self.orphans is not None and reply.open and reply.pending == 0:
                return Left.OPEN  # the next items may go to another shard

    def _batch_size(self) -> int:
        free = self.slots.free()
        if self.recorder.item_seconds is None:
            return free
        per_item = max(self.recorder.item_seconds, 1e-6)
        wanted = int(self.config.batch_target_s * self.config.concurrency / per_item)
        return max(free, min(wanted, self.config.max_batch, MAX_BATCH))

    def _finish(self) -> int:
        ttl = self.config.results_ttl_s
        expiring = ttl > 0 and self.queue.admin.expire_results(ttl)
        status = self.run_queue.reading.status()
        self.log.info(
            "worker.drained",
            processed=self.recorder.processed,
            failed=self.recorder.failed,
            done=status.done,
            dead=status.dead,
            total=status.total,
            **({"keys_expire_in_s": ttl} if expiring else {}),
        )
        if self.config.fail_on_dead and status.dead:
            self.log.error(
                "run.dead_items",
                dead=status.dead,
                hint=f"wq dead --run {self.run_queue.run}",
            )
            return EXIT_DEAD_ITEMS
        return EXIT_DRAINED

    def _shutdown(self) -> int:
        """Graceful stop: record what finished, hand back everything else at once."""
        self.handler.cancel_all()
        # Failures now are our own cancellations: not recorded.
        finished = [e for e in self.slots.results(0) if isinstance(e, Ran) or e.error is None]
        self.recorder.record_all(finished)
        self.recorder.flush()
        released = sum(
            self.queue.leases.release(token, positions)
            for token, positions in self.held.snapshot().items()
        )
        self.log.info("worker.stopped", processed=self.recorder.processed, released=released)
        return EXIT_STOPPED


def work(queue: RunQueue, config: WorkerConfig, log: EventLog) -> int:
    """`wq work`: a worker with the configured handler until the run is drained or SIGTERM;
    returns its exit code."""
    worker = Worker(queue, build_handler(config), config, log)
    worker.install_signal_handlers()
    if not (config.handler == "python" and config.python_isolation == "none"):
        # Not under a user's function run in this process: garbage it makes in cycles
        # (a large buffer held by one) would wait for longer between collections.
        collect_less()
    return worker.run()
