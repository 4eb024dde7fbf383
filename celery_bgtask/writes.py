"""``Writer``: every write of the record API in one place. The schema is migrated first, each
transition is told to the event bus once committed, and a wake-up goes out only after the
commit of the record it wakes (what was not sent is left to a worker's sweeper)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

from .celery.publish import Wakeup
from .core import state
from .core.events import EventBus, TaskEvent
from .core.record import TaskRecord
from .models import TaskStatus
from .store.base import TaskStore
from .timeutil import now_ms

# The record API's own log: its lines keep the name users filter on.
log = logging.getLogger("celery_bgtask.component")

Send = Callable[[Sequence[Wakeup], int], bool]


class Writer:
    def __init__(self, store: TaskStore, events: EventBus, send: Send) -> None:
        self.store = store
        self.events = events
        self.send = send
        self._ready = False

    def ensure_ready(self) -> None:
        """Migrate the schema on first use (cheap once done)."""
        if not self._ready:
            self.store.ensure_schema()
            self._ready = True

    def commit(self, task_id: str, transition: state.Transition) -> TaskRecord | None:
        """Apply ``transition`` to the record and tell the event bus: the new record, or None
        when the record was not in the state the transition expects (nothing is told)."""
        record = self.store.apply(task_id, transition)
        if record is not None:
            self.events.emit(TaskEvent(transition.name, record, now_ms()))
        return record

    def publish(self, wakeups: Sequence[Wakeup], chunk_size: int = 1) -> bool:
        """Publish wake-ups whose records already hold their stamp in ``enqueued_at``.

        If they may not have gone out, the stamps are cleared, so a worker's sweeper publishes
        them: broker trouble is logged and returns False; any other error (a broken install,
        a bug) is raised to the caller once the stamps are cleared.
        """
        sent = False
        try:
            sent = self.send(wakeups, chunk_size)
        finally:
            if not sent:
                self.store.set_enqueued([w.task_id for w in wakeups], None)
        return sent

    def insert_and_publish(self, records: Sequence[TaskRecord], chunk_size: int = 1) -> None:
        """Commit the records, then publish the wake-ups of those due now (``publish``)."""
        self.ensure_ready()
        # Stamped now, after validation and hooks, just before the INSERT and the publish: the
        # messages carry the stamp, and the sweeper compares the two (``backlog``).
        stamp = now_ms()
        # A record due later keeps no enqueued_at: the sweeper publishes it when due (no broker ETA).
        stamped = [dataclasses.replace(r, enqueued_at=stamp) if r.next_run_at is not None and r.next_run_at <= stamp
                   else r for r in records]
        self.store.insert(stamped)
        due = [Wakeup(r.id, 0, r.thread_id, r.type, stamp) for r in stamped if r.enqueued_at is not None]
        if due:
            self.publish(due, chunk_size)

    def cancel(self, task_id: str, include_running: bool) -> bool:
        self.ensure_ready()
        current = self.store.get(task_id)
        if current is None:
            log.info("task %s: no record to cancel", task_id)
            return False
        record = self.commit(task_id, state.cancel(current, now_ms(), include_running=include_running))
        if record is None:
            _log_not_cancelled(task_id, self.store.get(task_id) or current)
            return False
        log.info("task %s (type %s) cancelled", task_id, record.type)
        return True

    def retry(self, task_id: str) -> bool:
        self.ensure_ready()
        now = now_ms()
        # A failed record past its retention is only waiting for the cleanup: not retried.
        record = self.commit(task_id, state.run_now(now))
        if record is None:
            record = self.commit(task_id, state.requeue(now))
            if record is None:
                return False
            log.info("task %s (type %s) requeued from failed", task_id, record.type)
        self.publish([Wakeup(task_id, record.attempt, record.thread_id, record.type, now)])
        return True


def _log_not_cancelled(task_id: str, record: TaskRecord) -> None:
    """Say why ``cancel`` changed nothing: a silent False reads as a bug."""
    if record.status == TaskStatus.PROCESSING.value:
        log.info("task %s (type %s) is processing, so cancel() leaves it running: cancel() changes only a "
                 "pending task; abort() is the way to stop a running definition task", task_id, record.type)
    else:
        log.info("task %s (type %s) is %s, so cancel() changes nothing: only a pending task can be cancelled",
                 task_id, record.type, record.status)
