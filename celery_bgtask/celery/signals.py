"""Celery's signals that concern our tasks: revokes, received wake-ups, and pool processes
starting and stopping. Connected by ``install`` (once per process), never at import."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import signals

from .messages import chunk_keys
from .registry import runner_of, runners
from .worker import RUN_MANY_TASK, RUN_TASK

log = logging.getLogger(__name__)


def _request_task_id(request: Any) -> str | None:
    args = getattr(request, "args", None) or ()
    return str(args[0]) if args else getattr(request, "id", None)


def connect() -> None:
    """Connect the handlers; ``dispatch_uid`` makes a second call a no-op."""

    def on_revoked(sender: Any = None, request: Any = None, terminated: bool = False, **_: Any) -> None:
        """``celery control revoke`` (or ``AsyncResult.revoke``) of one of our messages cancels its records.

        A ``run_many`` message (a chunk of ``create_many``) carries several records: all of them.
        """
        name = getattr(sender, "name", None)
        runner = runner_of(sender.app) if name in (RUN_TASK, RUN_MANY_TASK) else None
        if runner is None:
            return
        if name == RUN_MANY_TASK:
            args: Sequence[Any] = getattr(request, "args", None) or ([],)
            task_ids = [task_id for task_id, _ in chunk_keys(args[0])]
        else:
            task_ids = [task_id] if (task_id := _request_task_id(request)) else []
        for task_id in task_ids:
            try:
                runner.host.cancel(task_id, include_running=terminated)
            except Exception:
                log.exception("task %s: could not record the revoke", task_id)

    def on_received(sender: Any = None, request: Any = None, **_: Any) -> None:
        """In the worker's main process, as each message arrives: note a wake-up's send time for the sweeper."""
        if getattr(request, "name", None) not in (RUN_TASK, RUN_MANY_TASK):
            return
        runner = runner_of(getattr(sender, "app", None))  # ``sender`` is the consumer
        if runner is not None:
            runner.backlog.note(request.request_dict)

    def on_process_init(**_: Any) -> None:
        # Connections opened before the fork belong to the parent.
        for runner in runners():
            runner.host.engine.dispose(close=False)

    def on_process_shutdown(**_: Any) -> None:
        for runner in runners():
            runner.lifecycle.shutdown_all()
            runner.host.store.close_held()

    signals.task_revoked.connect(on_revoked, weak=False, dispatch_uid="celery_bgtask.revoked")
    signals.task_received.connect(on_received, weak=False, dispatch_uid="celery_bgtask.received")
    signals.worker_process_init.connect(on_process_init, weak=False, dispatch_uid="celery_bgtask.process_init")
    signals.worker_process_shutdown.connect(on_process_shutdown, weak=False,
                                            dispatch_uid="celery_bgtask.process_shutdown")
