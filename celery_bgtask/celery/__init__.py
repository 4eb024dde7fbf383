"""The Celery wiring: the tasks, signals, worker bootstep, publishing, backlog, sweeper,
heartbeat and per-process lifecycle. Nothing here runs at import: ``install(app, host)``
(which ``BackgroundTaskComponent`` calls) puts it on one app.

Absolute imports keep ``from celery import ...`` inside this package naming Celery itself.
"""

from __future__ import annotations

from .registry import runner_of
from .wiring import install
from .worker import RUN_MANY_TASK, RUN_TASK, Runner

__all__ = ["RUN_MANY_TASK", "RUN_TASK", "Runner", "install", "runner_of"]
