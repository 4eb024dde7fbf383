"""What a task definition's ``run`` returns: ``ctx.response.done()``, ``continue_()``, ``error()``, ``aborted()``.

The response objects are plain values; ``iteration`` turns them into the record update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from . import limits
from .errors import TaskValidationError
from .models import ErrorInfo


@dataclass(frozen=True)
class Done:
    """The task succeeded; ``output`` becomes the record's ``result``."""

    output: Any = None


@dataclass(frozen=True)
class Continue:
    """Run another iteration with ``input_patch`` shallow-merged into the stored input."""

    input_patch: dict[str, Any] = field(default_factory=dict)
    wait: float | None = None


@dataclass(frozen=True)
class Error:
    """The task failed with ``error``."""

    error: ErrorInfo


@dataclass(frozen=True)
class Aborted:
    """The task stopped because it was asked to; it becomes ``cancelled``."""


Response = Done | Continue | Error | Aborted


def to_error_info(err: BaseException | ErrorInfo | str | dict[str, Any]) -> ErrorInfo:
    """An exception, an ``ErrorInfo``, a message, or an ``ErrorInfo``-shaped dict, as ``ErrorInfo``."""
    if isinstance(err, ErrorInfo):
        return err
    if isinstance(err, BaseException):
        return ErrorInfo.from_exception(err)
    if isinstance(err, str):
        return ErrorInfo(name="TaskError", message=err)
    if isinstance(err, dict):
        data = {"name": "TaskError", "message": "", **err}
        return ErrorInfo.model_validate(data)
    raise TaskValidationError("err", f"must be an exception, ErrorInfo, str or dict, got {type(err).__name__}")


class TaskResponse:
    """``ctx.response``: builds the value ``run`` returns."""

    def done(self, output: Any = None) -> Done:
        """Success: ``output`` (JSON-serialisable or a pydantic model) becomes the result."""
        return Done(output)

    def continue_(self, input_patch: dict[str, Any] | BaseModel | None = None, wait: Any = None) -> Continue:
        """Another iteration, after ``wait`` seconds (a number or a ``timedelta``), on the patched input."""
        if input_patch is None:
            patch: dict[str, Any] = {}
        elif isinstance(input_patch, BaseModel):
            patch = input_patch.model_dump(mode="json", exclude_unset=True)
        elif isinstance(input_patch, dict):
            patch = dict(input_patch)
        else:
            raise TaskValidationError("input_patch", f"must be a dict, got {type(input_patch).__name__}")
        return Continue(patch, limits.seconds("wait", wait))

    def error(self, err: BaseException | ErrorInfo | str | dict[str, Any]) -> Error:
        """Failure: ``err`` is recorded as the task's ``error``."""
        return Error(to_error_info(err))

    def aborted(self) -> Aborted:
        """Stopped on request (see ``runtime.is_aborted()``): the task becomes ``cancelled``."""
        return Aborted()
