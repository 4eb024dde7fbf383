"""``bg.abort()``: cooperative abort, from any process, through the record.

Each write is a transition on the state just read (status, attempt, lease), so a run that
starts or ends meanwhile makes the write miss and we look again:

- waiting (``pending``, or ``processing`` between iterations with no lease): cancelled
  at once, the hooks run here;
- running (``processing`` under a lease): ``abort_requested`` is set; the worker sees it
  through ``ctx.runtime.is_aborted()`` and at the iteration boundary;
- finished or unknown: nothing changes, False.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..core import state
from ..core.record import TaskRecord
from ..errors import TaskValidationError
from ..ids import parse_task_id
from ..limits import MAX_MESSAGE_CHARS, clean_text
from ..models import ErrorInfo
from ..store.base import TaskStore
from ..timeutil import now_ms

log = logging.getLogger(__name__)

ABORTED_ERROR = "TaskAborted"
Commit = Callable[[str, state.Transition], TaskRecord | None]


def _message(value: object) -> str | None:
    """The abort reason, checked before anything is read or written: a str of bounded length."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TaskValidationError("message", f"must be a str or None, got {type(value).__name__}")
    if len(value) > MAX_MESSAGE_CHARS:
        raise TaskValidationError("message", f"must be at most {MAX_MESSAGE_CHARS} characters, got {len(value)}")
    return clean_text("message", value)


def abort_task(store: TaskStore, commit: Commit, task_id: str, message: str | None = None) -> bool:
    """``commit`` applies a transition and tells the event bus (the hooks of a cancelled task)."""
    bare = parse_task_id(task_id)
    message = _message(message)
    reason = ErrorInfo(name=ABORTED_ERROR, message=message or "aborted on request")
    store.ensure_schema()
    for _ in range(5):
        current = store.get(bare)
        if current is None or current.status not in (state.PENDING, state.PROCESSING):
            return False
        if current.lease_until is None:
            record = commit(bare, state.abort_waiting(current, reason, now_ms()))
            if record is not None:
                log.info("task %s (type %s) aborted while waiting: cancelled", bare, record.type)
                return True
        else:
            record = commit(bare, state.request_abort(current, reason))
            if record is not None:
                log.info("task %s (type %s): abort requested while running", bare, record.type)
                return True
    return False
