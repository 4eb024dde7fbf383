"""The built-in task type that runs a scheduled task's callback on a worker.

Each firing of a trigger time is an ordinary task record of type ``SCHEDULED_TYPE``
(committed by the beat that claimed the firing), so it is durable, queryable and
recovered by the worker sweeper like any other task. Its payload names the schedule; the
callback that runs is read from the schedule's row, never from the payload, so a record
written by other means cannot make a worker import and call a name of its choosing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import Celery
from sqlalchemy import Engine

from ..errors import ScheduleNotFoundError, TaskValidationError
from ..handlers import HandlerSpec, build_spec
from ..resilience import with_retries
from ..store.schedules import ScheduleStore
from ..validation import json_text
from .callbacks import resolve

log = logging.getLogger(__name__)

#: The task type of a scheduled firing; ``bg.query(task_type=SCHEDULED_TYPE)`` lists them.
SCHEDULED_TYPE = "celery_bgtask.scheduled"


class ScheduledCall:
    """The handler of ``SCHEDULED_TYPE``: look the schedule's callback up by the firing's ``scheduleId`` and run it."""

    def __init__(self, app: Celery, engine: Engine) -> None:
        self.app = app
        self.schedules = ScheduleStore(engine)

    def callback_of(self, payload: object) -> tuple[str, str | None]:
        """The stored callback (and call JSON) of the schedule the firing names; raises
        (running nothing) when there is none."""
        schedule_id = payload.get("scheduleId") if isinstance(payload, dict) else None
        if not isinstance(schedule_id, str) or not schedule_id:
            raise TaskValidationError("payload.scheduleId", "a firing must name its schedule (a non-empty str); "
                                                            "nothing was run")
        stored = with_retries("schedule", lambda: self.schedules.callback_of(schedule_id))
        if stored is None:
            raise ScheduleNotFoundError(schedule_id)
        ref = stored[0]
        named = payload.get("callback") if isinstance(payload, dict) else None
        if named is not None and named != ref:
            log.warning("scheduled task %s: the firing's payload names another callback than the schedule's; "
                        "running the schedule's (%s)", schedule_id, ref)
        return stored

    def run(self, payload: dict[str, Any]) -> Any:
        ref, call_json = self.callback_of(payload)
        target = resolve(ref)
        if isinstance(target, str):
            # A Celery task: send it, so that its own routing, retries and result apply. A
            # beat_schedule entry's args, kwargs and options come from the schedule's row.
            call = json.loads(call_json) if call_json else {}
            args, kwargs, options = call.get("args", []), call.get("kwargs", {}), call.get("options", {})
            task = self.app.tasks.get(target)
            if task is not None:
                result = task.apply_async(args, kwargs, **options)
            else:
                result = self.app.send_task(target, args, kwargs, **options)
            return {"celeryTaskId": result.id}
        value = target()
        try:
            json_text("result", value, max_bytes=None)
        except TaskValidationError:
            log.info("scheduled task %s: its callback returned a %s, which is not JSON; not recorded",
                     payload.get("scheduleId"), type(value).__name__)
            return None
        return value


def scheduled_spec(app: Celery, engine: Engine) -> HandlerSpec:
    """The handler of firings; every component installs it, so any worker of the app runs them."""
    return build_spec(SCHEDULED_TYPE, ScheduledCall(app, engine).run, None, None, None)
