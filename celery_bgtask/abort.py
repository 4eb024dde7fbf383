"""``bg.abort()``: cooperative abort, from any process, through the record.

Each write is a conditional UPDATE on the state just read (status, attempt, lease), so a
run that starts or ends meanwhile makes the write miss and we look again:

- waiting (``pending``, or ``processing`` between iterations with no lease): cancelled
  at once, the hooks run here;
- running (``processing`` under a lease): ``abort_requested`` is set; the worker sees it
  through ``ctx.runtime.is_aborted()`` and at the iteration boundary;
- finished or unknown: nothing changes, False.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import TaskValidationError
from .ids import parse_task_id
from .limits import MAX_MESSAGE_CHARS, clean_text
from .models import ErrorInfo, TaskStatus
from .records import retain_until
from .store.tasks import PENDING, PROCESSING, c
from .timeutil import now_ms

if TYPE_CHECKING:
    from .component import BackgroundTaskComponent

log = logging.getLogger(__name__)

ABORTED_ERROR = "TaskAborted"


def _message(value: object) -> str | None:
    """The abort reason, checked before anything is read or written: a str of bounded length."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TaskValidationError("message", f"must be a str or None, got {type(value).__name__}")
    if len(value) > MAX_MESSAGE_CHARS:
        raise TaskValidationError("message", f"must be at most {MAX_MESSAGE_CHARS} characters, got {len(value)}")
    return clean_text("message", value)


def abort_task(comp: BackgroundTaskComponent, task_id: str, message: str | None = None) -> bool:
    bare = parse_task_id(task_id)
    message = _message(message)
    comp._ensure()
    reason = ErrorInfo(name=ABORTED_ERROR, message=message or "aborted on request")
    error = reason.model_dump_json(exclude_none=True, by_alias=True)
    for _ in range(5):
        current = comp.store.get(bare)
        if current is None or current.status not in (PENDING, PROCESSING):
            return False
        now = now_ms()
        if current.lease_until is None:
            row = comp.store.transition(
                bare,
                [c.status == current.status, c.attempt == current.attempt, c.lease_until.is_(None)],
                {
                    "status": TaskStatus.CANCELLED.value,
                    "abort_requested": True,
                    "error": error,
                    "date_cancelled": now,
                    "date_modified": now,
                    "date_retain_until": retain_until(current.retain_for, now),
                    "next_run_at": None,
                    "enqueued_at": None,
                },
            )
            if row is not None:
                log.info("task %s (type %s) aborted while waiting: cancelled", bare, row.type)
                comp._notify(row)
                comp._finish_retention(row)
                return True
        else:
            row = comp.store.transition(
                bare,
                [c.status == PROCESSING, c.attempt == current.attempt, c.lease_until.is_not(None)],
                {"abort_requested": True, "error": error},
            )
            if row is not None:
                log.info("task %s (type %s): abort requested while running", bare, row.type)
                return True
    return False
