"""The event bus: every committed change of a task record is told to its subscribers.

State-change callbacks, definition hooks, metrics and task logs subscribe here instead of
being called from each place that commits a change. A subscriber that raises is logged with
the task's id and type, and never changes the outcome or stops the subscribers after it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .record import TaskRecord

log = logging.getLogger(__name__)

#: The transitions that give a record a new status; state-change callbacks hear of these.
#: (``continue`` keeps a definition processing, ``run_now`` and ``request_abort`` change no status.)
STATUS_CHANGES = frozenset({"claim", "succeed", "retry", "fail", "cancel", "abort", "recover", "requeue"})


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """``transition`` names what happened (``create``, ``claim``, ``succeed``, ... ``remove``);
    ``record`` is the record as committed (as it was, for ``remove``); ``at`` is when (epoch ms).
    ``run_seconds``: how long the handler ran, on the transition that ends a run."""

    transition: str
    record: TaskRecord
    at: int
    run_seconds: float | None = None

    @property
    def changes_status(self) -> bool:
        return self.transition in STATUS_CHANGES


Subscriber = Callable[[TaskEvent], object]


class EventBus:
    """Subscribers are called in the order they subscribed, in the thread that emits."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that removes it again."""
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

        return unsubscribe

    def emit(self, event: TaskEvent) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("a subscriber (%s) raised for task %s (type %s, %s); the task's outcome is unchanged",
                              getattr(subscriber, "__qualname__", subscriber), event.record.id, event.record.type,
                              event.transition)
