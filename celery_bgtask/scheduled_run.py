"""The built-in task type that runs a scheduled task's callback on a worker.

Each firing of a trigger time is an ordinary task record of type ``SCHEDULED_TYPE``
(committed by the beat that claimed the firing), so it is durable, queryable and
recovered by the worker sweeper like any other task. Its payload names the callback.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery import Celery

from .errors import TaskValidationError
from .handlers import HandlerSpec, build_spec
from .schedule_callbacks import resolve
from .validation import json_text

if TYPE_CHECKING:
    from .component import BackgroundTaskComponent

log = logging.getLogger(__name__)

#: The task type of a scheduled firing; ``bg.query(task_type=SCHEDULED_TYPE)`` lists them.
SCHEDULED_TYPE = "celery_bgtask.scheduled"


class ScheduledCall:
    """The handler of ``SCHEDULED_TYPE``: import the callback by name and run it."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def run(self, payload: dict[str, Any]) -> Any:
        target = resolve(str(payload["callback"]))
        if isinstance(target, str):
            # A Celery task: send it, so that its own routing, retries and result apply.
            task = self.app.tasks.get(target)
            result = task.apply_async() if task is not None else self.app.send_task(target)
            return {"celeryTaskId": result.id}
        value = target()
        try:
            json_text("result", value, max_bytes=None)
        except TaskValidationError:
            log.info("scheduled task %s: its callback returned a %s, which is not JSON; not recorded",
                     payload.get("scheduleId"), type(value).__name__)
            return None
        return value


def scheduled_spec(component: BackgroundTaskComponent) -> HandlerSpec:
    """The handler of firings; every component installs it, so any worker of the app runs them."""
    return build_spec(SCHEDULED_TYPE, ScheduledCall(component.app).run, None, None, None)
