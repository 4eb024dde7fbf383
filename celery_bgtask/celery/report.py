"""How a run's end is told to Celery and to the log: Celery sees a committed outcome as it
would see a plain task's; a claim that took nothing says why."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.exceptions import Ignore, Reject, Retry

from ..core.outcome import Outcome
from ..core.record import TaskRecord
from ..errors import BgTaskError, StoreUnavailableError
from ..models import ErrorInfo

log = logging.getLogger(__name__)


class TaskFailed(BgTaskError):
    """Raised to Celery when a task's run failed for good; the record holds the details."""

    def __init__(self, task_id: str, error: ErrorInfo | None) -> None:
        self.task_id = task_id
        self.error = error
        what = f"{error.name}: {error.message}" if error else "failed"
        super().__init__(f"task {task_id} failed: {what}")

    def __reduce__(self) -> tuple[type[TaskFailed], tuple[str, ErrorInfo | None]]:
        # Celery keeps an exception only if it survives a copy by its constructor's
        # arguments; otherwise it logs a stand-in of a base class, which no longer matches
        # ``throws`` and is reported as "raised unexpected" with a traceback.
        return type(self), (self.task_id, self.error)


def report(task_id: str, committed: tuple[str, TaskRecord] | None, outcome: Outcome) -> Any:
    """Tell Celery a committed outcome as it would see a plain task's: a return, ``Retry``, or an
    exception. A handler's own exception is raised again, so the worker's log line and Celery's
    ``task-failed`` event carry the user's traceback; ``TaskFailed`` only stands in where there
    is none (a definition's ``error()`` response, a payload that does not validate)."""
    if committed is None:
        return None
    name, record = committed
    if name == "retry":
        # No message: Celery then says "Retry in 3.0s: ValueError('boom')".
        raise Retry(None, exc=outcome.exception, when=(record.retry_interval or 0) / 1000)
    if name == "fail":
        # Celery's own control exceptions would change what Celery does with the message.
        if outcome.exception is not None and not isinstance(outcome.exception, (Retry, Ignore, Reject)):
            raise outcome.exception
        raise TaskFailed(task_id, outcome.error)
    return "cancelled" if name == "cancel" else None


@contextmanager
def requeued_while_unavailable(what: str) -> Iterator[None]:
    """The database stayed down through ``with_retries``: give the message back to its queue, so
    the task runs once the database answers (a run that had claimed its record is recovered
    when its lease runs out, and this message's claim then fails its fence)."""
    try:
        yield
    except StoreUnavailableError as exc:
        log.error("%s: %s; its message goes back to the queue", what, exc)
        raise Reject(str(exc), requeue=True) from exc


def log_claim_lost(record: TaskRecord | None, task_id: str, task_type: str, attempt: int) -> None:
    """Why a wake-up claimed nothing: usually a duplicate (debug), else what does not match (info)."""
    if record is None:
        log.info("task %s: no record (removed, or an id from elsewhere); wake-up dropped", task_id)
    elif record.type != task_type:
        log.info("task %s: the wake-up names type %r but the record is of type %r; dropped", task_id, task_type,
                 record.type)
    elif record.attempt != attempt:
        log.info("task %s: the wake-up is for attempt %d but the record is at attempt %d (%s); dropped", task_id,
                 attempt, record.attempt, record.status)
    else:
        log.debug("task %s: claim at attempt %d failed (a duplicate, cancelled, or not due)", task_id, attempt)
