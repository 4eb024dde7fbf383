"""``install(app, host)``: the run tasks, the signals and the worker's sweeper, once per app."""

from __future__ import annotations

from celery import Celery

from ..errors import BgTaskError
from . import signals
from .host import Host
from .registry import remember, runner_of
from .sweeper import WorkerStep
from .worker import Runner


def install(app: Celery, host: Host) -> Runner:
    """Register the run tasks, the signals and the worker's sweeper bootstep on ``app`` (once per app)."""
    existing = runner_of(app)
    if existing is not None:
        if existing.host is not host:
            raise BgTaskError("a BackgroundTaskComponent is already installed on this Celery app")
        return existing
    runner = Runner(app, host)
    remember(app, runner)
    signals.connect()
    app.steps["worker"].add(WorkerStep)
    return runner
