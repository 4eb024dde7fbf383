"""The event bus's standing subscribers on every component, in this order: the type's
state-change callback (definition hooks ride on it), then ``retain_for=0`` removal, so a
record goes only once its callbacks have seen it."""

from __future__ import annotations

from collections.abc import Mapping

from .core.events import Subscriber, TaskEvent
from .core.state import TERMINAL
from .handlers import HandlerSpec, safe_call
from .records import to_public
from .store.base import TaskStore


def state_callbacks(handlers: Mapping[str, HandlerSpec]) -> Subscriber:
    """Tells the record's type's callback of every status change, after its commit."""

    def tell(event: TaskEvent) -> None:
        if not event.changes_status:
            return
        spec = handlers.get(event.record.type)
        if spec is None or spec.callback is None:
            return  # no callback: no need to build the public record (a pydantic model) at all
        task = to_public(event.record)
        safe_call("state_change_callback", spec.callback, task, task_id=task.id, task_type=task.type)

    return tell


def removal_when_done(store: TaskStore) -> Subscriber:
    """``retain_for=0``: a finished record goes as soon as its callbacks have run."""

    def drop(event: TaskEvent) -> None:
        record = event.record
        if record.retain_for == 0 and record.status in TERMINAL and event.transition != "remove":
            store.delete(record.id)

    return drop
