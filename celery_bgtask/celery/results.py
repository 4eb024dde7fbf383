"""``result_backend = "bgtask://"``: Celery's result API (``AsyncResult``, ``ResultSet``,
``celery result``) read from our records, so Celery users see our tasks with their own tools.

The records are the results: this backend reads them and never writes a result of its own.
Plain Celery tasks of the same app are not stored (a warning says so once per task name);
their ``AsyncResult`` stays ``PENDING``. ``forget`` deletes a finished record.
"""

from __future__ import annotations

import builtins
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from celery import states
from celery.backends.base import BaseBackend
from celery.exceptions import TimeoutError as CeleryTimeoutError

from ..core.record import TaskRecord
from ..errors import BgTaskError
from ..ids import parse_task_id
from ..models import TaskStatus
from ..store.base import TaskStore
from .registry import runner_of

log = logging.getLogger(__name__)

#: Our status -> Celery's state (a pending task that has failed before waits for a retry).
STATES = {TaskStatus.PENDING.value: states.PENDING, TaskStatus.PROCESSING.value: states.STARTED,
          TaskStatus.SUCCESS.value: states.SUCCESS, TaskStatus.FAILED.value: states.FAILURE,
          TaskStatus.CANCELLED.value: states.REVOKED}

FIRST_POLL = 0.02  # seconds; each wait doubles, up to the caller's ``interval``


class NoComponentError(BgTaskError):
    """The app has no ``BackgroundTaskComponent``, so there are no records to read."""


class BgTaskBackend(BaseBackend):
    """Reads ``AsyncResult(id)`` (a bare 32-hex id or the URN) from the task's record."""

    def __init__(self, app: Any, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(app, url=url, **kwargs)
        self._unstored: set[str] = set()

    def _store(self) -> TaskStore:
        runner = runner_of(self.app)
        if runner is None:
            raise NoComponentError('result_backend "bgtask://" reads the records of a BackgroundTaskComponent: '
                                   "build one on this Celery app first")
        runner.host.ensure_ready()
        return runner.host.store

    def _record(self, task_id: str) -> TaskRecord | None:
        try:
            bare = parse_task_id(task_id)
        except BgTaskError:
            return None  # not one of ours (a plain Celery task's uuid): unknown, as Celery says PENDING
        return self._store().get(bare)

    def _get_task_meta_for(self, task_id: str) -> dict[str, Any]:
        record = self._record(task_id)
        if record is None:
            return {"task_id": task_id, "status": states.PENDING, "result": None, "traceback": None, "children": []}
        state = STATES[record.status]
        if state == states.PENDING and record.error is not None:
            state = states.RETRY
        error = json.loads(record.error) if record.error else None
        result: Any = json.loads(record.result) if record.result is not None else None
        if state in (states.FAILURE, states.RETRY) and error is not None:
            result = remote_exception(error)
        elif state == states.REVOKED:
            result = None
        return {"task_id": task_id, "status": state, "result": result, "children": [],
                "traceback": error.get("stack") if isinstance(error, dict) else None,
                "date_done": record.date_completed or record.date_cancelled}

    def wait_for(self, task_id: str, timeout: float | None = None, interval: float = 0.5, no_ack: bool = True,
                 on_interval: Callable[[], None] | None = None) -> dict[str, Any]:
        """Poll the record with a doubling pause (from 20 ms up to ``interval``), so a short
        task answers quickly and a long one is not asked every few milliseconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = FIRST_POLL
        while True:
            meta: dict[str, Any] = self.get_task_meta(task_id)
            if meta["status"] in states.READY_STATES:
                return meta
            if on_interval:
                on_interval()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise CeleryTimeoutError("The operation timed out.")
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, max(interval, FIRST_POLL))

    def _store_result(self, task_id: str, result: Any, state: str, traceback: Any = None, request: Any = None,
                      **kwargs: Any) -> Any:
        """The record is the result: nothing is written. A plain Celery task is told about once."""
        name = getattr(request, "task", None) or "?"
        if self._record(task_id) is None and name not in self._unstored:
            self._unstored.add(name)
            log.warning('result_backend "bgtask://" stores no results of plain Celery tasks (task %s): '
                        "their AsyncResult stays PENDING; give them a result backend of their own "
                        "(Celery's result_backend is per app) or create them as bgtask tasks", name)
        return result

    def _forget(self, task_id: str) -> None:
        """Delete the record once it is finished (a pending or running task is left alone)."""
        record = self._record(task_id)
        if record is not None and TaskStatus(record.status).is_terminal:
            self._store().delete(record.id)

    def cleanup(self) -> None:
        """Expired records are the workers' cleanup's job."""


def remote_exception(error: dict[str, Any]) -> BaseException:
    """The stored error as an exception with its name and message: the built-in class when
    the name is one (``ValueError``), else an ``Exception`` subclass of that name."""
    name = str(error.get("name") or "Exception")
    message = str(error.get("message") or "")
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        try:
            return builtin(message)
        except TypeError:  # a built-in that takes other arguments (UnicodeDecodeError)
            pass
    cls: type[Exception] = type(name if name.isidentifier() else "TaskError", (Exception,),
                                {"__module__": "celery_bgtask.remote"})
    return cls(message)
