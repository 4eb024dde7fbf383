"""One iteration of a definition's run, as the ``Outcome`` the worker commits.

- ``done(output)`` -> ``success``; ``error(err)`` or an exception -> ``failed`` (no retries:
  iterations are the retry mechanism); ``aborted()`` -> ``cancelled``.
- ``continue_(patch, wait)`` -> ``continue``: the patch is shallow-merged into the stored
  input, which is committed with the outcome (so a crash resumes from it), the record
  stays ``processing``, and the next iteration is due after ``wait`` seconds.
- A continue that would start iteration number ``max_iterations + 1`` fails the task with
  ``MaxIterationsExceeded`` instead (hooks: ``on_max_iterations``, then ``on_error``).
- An abort requested meanwhile turns a continue into ``cancelled``, and a claimed
  iteration whose flag is already set is not run at all.

``iterations`` on the record counts the iterations started and ended (or lost to a
worker crash), so a crash loop is bounded by ``max_iterations`` too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from ..context import TaskContext
from ..core.outcome import Outcome
from ..core.record import TaskRecord
from ..errors import TaskValidationError
from ..models import ErrorInfo
from ..records import to_public
from ..responses import Aborted, Continue, Done, Error, TaskResponse
from ..runtime import TaskRuntime
from ..store.base import TaskStore
from ..validation import json_text
from .model import MAX_ITERATIONS_ERROR, TaskDefinition

log = logging.getLogger(__name__)


def _max_iterations(definition: TaskDefinition, count: int, payload: str | None) -> Outcome:
    error = ErrorInfo(
        name=MAX_ITERATIONS_ERROR,
        message=f"the task did not finish within max_iterations={definition.max_iterations} iterations",
    )
    return Outcome("failed", error=error, retryable=False, payload=payload,
                   extra={"iterations": count, "payload": payload})


class Iterations:
    """``HandlerSpec.execute`` / ``on_lost`` of one definition."""

    def __init__(self, definition: TaskDefinition, store: TaskStore, max_payload_bytes: int,
                 run_soft_limit: Callable[[], float | None]) -> None:
        self.definition = definition
        self.store = store
        self.max_payload_bytes = max_payload_bytes
        #: The run task's soft time limit (Celery's), read when an iteration starts.
        self.run_soft_limit = run_soft_limit

    def _soft_limit(self) -> float | None:
        """This task's own budget: the definition's, else the run task's soft time limit.

        The run task's is what Celery enforces on a run message (from ``task_soft_time_limit``
        or an annotation); a chunk's message carries n times it, and each task of the chunk
        still gets its own share.
        """
        if self.definition.soft_time_limit is not None:
            return self.definition.soft_time_limit
        return self.run_soft_limit()

    def execute(self, row: TaskRecord, celery_task: Any) -> Outcome:
        """``HandlerSpec.execute``: one iteration (``celery_task`` is in that signature; unused here)."""
        count = (row.iterations or 0) + 1
        try:
            if row.abort_requested:
                return Outcome("cancelled", extra={"iterations": row.iterations})
            return self._iterate(row, count)
        except Exception as exc:  # our own bug or the database: fail this task, not the worker
            log.exception("task %s (definition %s): iteration %d could not run", row.id, row.type, count)
            return Outcome("failed", error=ErrorInfo.from_exception(exc), retryable=False,
                           extra={"iterations": count})

    def _iterate(self, row: TaskRecord, count: int) -> Outcome:
        definition = self.definition
        stored = {} if row.payload is None else json.loads(row.payload)
        done_extra = {"iterations": count}
        try:
            value = definition.parse_input(stored)
        except TaskValidationError as exc:
            return Outcome("failed", error=ErrorInfo(name="TaskValidationError", message=str(exc)),
                           retryable=False, extra=done_extra)
        store, task_id = self.store, row.id
        runtime = TaskRuntime(lambda: store.abort_requested(task_id), self._soft_limit(),
                              started=time.monotonic())
        ctx = TaskContext(input=value, task=to_public(row), iteration=count,
                          response=TaskResponse(), runtime=runtime)
        log.info("task %s (definition %s): iteration %d", row.id, definition.id, count)
        try:
            answer = definition.run(ctx)
        except Exception as exc:
            return Outcome("failed", error=ErrorInfo.from_exception(exc), retryable=False, extra=done_extra,
                           exception=exc)
        if isinstance(answer, Aborted):
            return Outcome("cancelled", extra=done_extra)
        if isinstance(answer, Error):
            return Outcome("failed", error=answer.error, retryable=False, extra=done_extra)
        if isinstance(answer, Continue):
            return self._continue(row, stored, answer, count)
        output = answer.output if isinstance(answer, Done) else answer  # a plain return is done(value)
        try:
            text = json_text("output", output, max_bytes=None)
        except TaskValidationError as exc:
            return Outcome("failed", error=ErrorInfo(name="TaskValidationError", message=str(exc)),
                           retryable=False, extra=done_extra)
        return Outcome("success", result=text, extra=done_extra)

    def _continue(self, row: TaskRecord, stored: Any, answer: Continue, count: int) -> Outcome:
        definition = self.definition
        merged = {**(stored if isinstance(stored, dict) else {}), **answer.input_patch}
        try:
            # What is stored is the validated input, as at trigger time: the model's ``extra``
            # setting decides what becomes of a key the patch adds that the model lacks.
            value = definition.parse_input(merged, field="input_patch")
            text = json_text("input_patch", value, max_bytes=self.max_payload_bytes)
        except TaskValidationError as exc:
            return Outcome("failed", error=ErrorInfo(name="TaskValidationError", message=str(exc)),
                           retryable=False, extra={"iterations": count})
        if self._abort_requested(row.id):
            return Outcome("cancelled", extra={"iterations": count, "payload": text})
        if count >= definition.max_iterations:
            return _max_iterations(definition, count, text)
        return Outcome("continue", payload=text, wait=answer.wait, extra={"iterations": count})

    def _abort_requested(self, task_id: str) -> bool:
        """The flag at the iteration boundary. If it cannot be read, the next claim sees it anyway."""
        try:
            return self.store.abort_requested(task_id)
        except Exception:
            log.warning("task %s: could not read the abort flag at the iteration boundary", task_id, exc_info=True)
            return False

    def on_lost(self, row: TaskRecord) -> Outcome:
        """The worker running an iteration died: run it again from the last committed input."""
        count = (row.iterations or 0) + 1
        if row.abort_requested:
            return Outcome("cancelled", extra={"iterations": count})
        if count >= self.definition.max_iterations:
            return _max_iterations(self.definition, count, row.payload)
        log.warning("task %s (definition %s): iteration %d was lost with its worker; resuming from the "
                    "last committed input", row.id, row.type, count)
        return Outcome("continue", payload=row.payload, wait=0, extra={"iterations": count})
