"""The worker's sweeper: a thread in each worker's main process, started by a bootstep.

Every ``poll_interval`` it
- recovers runs whose lease ran out (the process running them died): the task goes back
  to pending for a retry, or fails if it has none left;
- publishes wake-ups for runnable records of the types this worker handles whose message
  is missing (a retry that came due, a publish that failed, a type no other worker had),
  or is older than ``redeliver_after`` and no longer in its queue (``backlog``);
- every ``cleanup_interval``, deletes records whose retention has passed, in batches for as
  long as they come back full, within a time budget; when the budget ran out with more left,
  it goes on at the next poll;
- cancels the pending records whose ids the worker has been told to revoke since the last
  poll, so a revoke is kept in the database, not only in the worker's memory.

Every write is a compare-and-set, so any number of workers can sweep the same database.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import bootsteps
from celery.worker import state as worker_state

from ..core import state
from ..core.outcome import Outcome
from ..ids import is_bare_id
from ..models import ErrorInfo
from ..resilience import OutageLog, is_transient
from ..store.base import Due
from ..timeutil import now_ms
from .backlog import Backlog
from .host import Host
from .publish import Wakeup
from .registry import runner_of
from .worker import Runner

log = logging.getLogger(__name__)

BATCH = 500
#: The share of ``poll_interval`` that one cleanup pass may take while it finds full batches.
CLEANUP_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Cleanup:
    """One cleanup pass: how many records it deleted, and whether it found no more expired."""

    deleted: int
    finished: bool


class Sweeper:
    """Runs beside a worker's consumer; ``backlog`` is that worker's (by default its app's runner's)."""

    def __init__(self, component: Host, backlog: Backlog | None = None, *, batch: int = BATCH,
                 cleanup_budget: float | None = None) -> None:
        """``batch``: records per DELETE; ``cleanup_budget``: seconds a cleanup pass may take
        (``CLEANUP_SHARE`` of ``poll_interval`` by default)."""
        self.component = component
        if backlog is None:
            runner = runner_of(component.app)
            backlog = runner.backlog if runner is not None else Backlog(component.app)
        self.backlog = backlog
        self.batch = batch
        self.cleanup_budget = (component.settings.poll_interval * CLEANUP_SHARE / 1000
                               if cleanup_budget is None else cleanup_budget)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_cleanup = 0
        self._revoked_seen: set[str] = set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="bgtask-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        period = self.component.settings.poll_interval / 1000
        outage = OutageLog(log, f"sweeper of {self.component.store.describe()}", base=period)
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception as exc:
                self._stop.wait(outage.failed(exc))
                continue
            outage.succeeded()
            self._stop.wait(period)

    def sweep(self) -> None:
        self.component.ensure_ready()
        now = now_ms()
        self.cancel_revoked()
        self.recover_expired(now)
        self.publish_due(now)
        if now >= self._next_cleanup:
            # Cut short by its budget: the rest at the next poll, not a cleanup_interval later.
            finished = self.cleanup(now).finished
            self._next_cleanup = now + self.component.settings.cleanup_interval if finished else 0

    def cancel_revoked(self) -> int:
        """Cancel the pending records of the ids revoked in this worker since the last poll.

        Celery keeps revoked ids in each worker's memory and acts on one only when a message
        with that id arrives. A task sent in a chunk has no message of its own, and a task
        due later (a retry, a delayed trigger) gets its message only when due, by which time
        the worker may have restarted and forgotten the revoke. Every worker receives the
        broadcast, so the first sweep to see it records it; the others find nothing to change.
        """
        try:
            current = {str(task_id) for task_id in worker_state.revoked}
        except RuntimeError:  # changed while read (the consumer adds revokes): next poll
            return 0
        new = sorted(current - self._revoked_seen)
        self._revoked_seen &= current  # forget what Celery has forgotten
        cancelled = 0
        for task_id in new:
            # Not one of ours if not a bare id (a chunk's id is one, and finds no record). A
            # database error propagates here: the ids not yet seen are tried next poll.
            if is_bare_id(task_id) and self.component.cancel(task_id):
                cancelled += 1
                log.info("task %s cancelled: its id was revoked", task_id)
            self._revoked_seen.add(task_id)
        return cancelled

    def recover_expired(self, now: int) -> int:
        comp = self.component
        recovered = 0
        for row in comp.store.expired_leases(now, BATCH):
            lost = Outcome(
                "failed",
                error=ErrorInfo(
                    name="WorkerLostError",
                    message=f"the worker running this task ({row.worker}) stopped before it finished",
                ),
            )
            spec = comp.handler(row.type)
            if spec is not None and spec.on_lost is not None:
                lost = spec.on_lost(row)
            recover = state.recover(row, lost, now)
            new = comp.commit(row.id, recover)
            if new is None:
                continue
            recovered += 1
            log.warning("task %s (type %s): lease expired on %s; now %s", row.id, row.type, row.worker, recover.settles)
        return recovered

    def publish_due(self, now: int) -> int:
        """Publish wake-ups for records that never had one, then for those whose wake-up is
        older than ``redeliver_after`` and gone from its queue (see ``backlog``)."""
        comp = self.component
        types = comp.handler_types()
        published, broker_up = self._publish_rows(comp.store.due_for_publish(now, None, types, BATCH), now)
        if not broker_up:
            return published
        stale = comp.store.due_for_publish(now, now - comp.settings.redeliver_after, types, BATCH)
        if stale:
            gone = self.backlog.judge(now, comp.settings.redeliver_after)
            gone_rows = [r for r in stale if r.enqueued_at is not None and gone(r.thread_id, r.enqueued_at)]
            published += self._publish_rows(gone_rows, now)[0]
        return published

    def _publish_rows(self, rows: list[Due], now: int) -> tuple[int, bool]:
        """(how many were published, False if the broker failed and the rest were left for next time)."""
        comp = self.component
        published = 0
        for row in rows:
            if not comp.store.take_publish(row.id, row.attempt, row.enqueued_at, now):
                continue
            if not comp.publish([Wakeup(row.id, row.attempt, row.thread_id, row.type, now)]):
                return published, False
            published += 1
        return published, True

    def cleanup(self, now: int) -> Cleanup:
        """Delete expired records a batch at a time while the batches come back full, for at
        most ``cleanup_budget`` seconds (one batch at least), so that recovery and publishing
        in the same loop are not held up by a backlog; ``finished`` says if it got to the end."""
        store = self.component.store
        deleted = 0
        started = time.monotonic()
        while True:
            batch = store.delete_expired(now, self.batch)
            deleted += batch
            if batch < self.batch:
                finished = True
                break
            if time.monotonic() - started >= self.cleanup_budget:
                finished = False
                break
        if deleted:
            log.info("cleanup removed %d expired task records%s", deleted, "" if finished else "; more next poll")
        return Cleanup(deleted, finished)


class WorkerStep(bootsteps.StartStopStep):
    """Worker bootstep: runs the sweeper beside the consumer, and on stop (warm or cold)
    stops it and shuts down handler types live in this process (solo/threads pools;
    prefork children do it on ``worker_process_shutdown``).
    """

    label = "bgtask"
    # Start after the pool: threads must not be running while prefork forks its children.
    requires = ("celery.worker.components:Pool",)

    def include_if(self, parent: Any) -> bool:
        return runner_of(parent.app) is not None

    def create(self, parent: Any) -> _Service:
        runner = runner_of(parent.app)
        assert runner is not None  # include_if
        try:
            runner.host.ensure_ready()  # migrate once, in the main process, before any child forks
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Start anyway: the sweeper retries with backoff, and wake-ups wait in their queue.
            log.error("celery_bgtask: the database %s is not answering (%s); the worker starts anyway, "
                      "retries it with backoff, and runs background tasks once it answers",
                      runner.host.store.describe(), type(exc).__name__)
        return _Service(runner)


class _Service:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.sweeper = Sweeper(runner.host, runner.backlog)

    def start(self) -> None:
        self.sweeper.start()

    def stop(self) -> None:
        self.sweeper.stop()
        self.runner.heartbeat.close()
        self.runner.lifecycle.shutdown_all()

    terminate = stop

