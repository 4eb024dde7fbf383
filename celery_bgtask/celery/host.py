"""``Host``: what the Celery side needs of the record API, so this package never imports the
component (the component installs it, not the other way round)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from celery import Celery
from sqlalchemy import Engine

from ..config import Settings
from ..core.record import TaskRecord
from ..core.state import Transition
from ..handlers import HandlerSpec
from ..store.base import TaskStore
from .publish import Wakeup


class Host(Protocol):
    app: Celery
    settings: Settings
    store: TaskStore
    engine: Engine

    def ensure_ready(self) -> None: ...

    def handler(self, task_type: str) -> HandlerSpec | None: ...

    def handler_types(self) -> list[str]: ...

    def commit(self, task_id: str, transition: Transition) -> TaskRecord | None:
        """Apply a transition and tell the event bus (callbacks, hooks, retention)."""

    def cancel(self, task_id: str, *, include_running: bool = False) -> bool: ...

    def publish(self, wakeups: Sequence[Wakeup], chunk_size: int = 1) -> bool:
        """Publish stamped wake-ups; on failure their stamps are cleared for the sweeper."""
