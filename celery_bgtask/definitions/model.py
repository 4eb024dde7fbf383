"""What a definition is: its fields, checked (``build_definition``), how its input is parsed,
and how its hooks hear of a state change (``TaskDefinition.notify``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import limits
from .. import validation as v
from ..context import TaskContext
from ..errors import TaskValidationError
from ..handlers import HandlerSpec, StateCallback, safe_call
from ..models import BackgroundTask, TaskStatus
from ..reprs import safe_repr

#: ``ErrorInfo.name`` of a task that reached ``max_iterations``.
MAX_ITERATIONS_ERROR = "MaxIterationsExceeded"
DEFAULT_MAX_ITERATIONS = 500

Hook = Callable[[BackgroundTask[Any, Any]], Any]
RunFunction = Callable[["TaskContext[Any]"], Any]


class DefinitionInfo(BaseModel):
    """What an HTTP API lists about a definition."""

    id: str
    title: str
    description: str | None = None
    private: bool = False


@dataclass(frozen=True)
class TaskDefinition:
    """A registered definition. Durations: ``retain_for`` in ms, ``soft_time_limit`` in seconds."""

    id: str
    title: str
    run: RunFunction
    description: str | None = None
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    input_model: type[BaseModel] | None = None
    private: bool = False
    retain_for: int | None = None
    soft_time_limit: float | None = None
    on_before_trigger: Callable[[Any], Any] | None = None
    on_done: Hook | None = None
    on_error: Hook | None = None
    on_abort: Hook | None = None
    on_max_iterations: Hook | None = None
    state_change_callback: StateCallback | None = None

    def info(self) -> DefinitionInfo:
        return DefinitionInfo(id=self.id, title=self.title, description=self.description, private=self.private)

    def parse_input(self, value: Any, field: str = "input") -> Any:
        """The input as ``run`` sees it: an ``input_model`` instance, or a dict.

        Unknown keys follow the model's own ``extra`` setting, as pydantic does: dropped
        (``"ignore"``, the default), refused (``"forbid"``) or kept (``"allow"``); an instance
        of another model (a subclass too) is validated from its dump, so its fields get the
        same treatment. Raises ``TaskValidationError`` listing every invalid field.
        """
        if self.input_model is None:
            if value is None:
                return {}
            if isinstance(value, BaseModel):
                return value.model_dump(mode="json")
            if not isinstance(value, dict):
                raise TaskValidationError(field, f"must be a dict (or None), got {type(value).__name__}")
            return value
        if type(value) is self.input_model:
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True)
        try:
            return self.input_model.model_validate({} if value is None else value)
        except ValidationError as exc:
            raise TaskValidationError(field, _describe_errors(exc)) from None

    def notify(self, task: BackgroundTask[Any, Any]) -> None:
        """The type's state-change callback: the user's callback, then the hook for a terminal state.

        Between iterations the record stays ``processing``; only the first claim reports it.
        """
        iterations = getattr(task, "iterations", 0) or 0
        if task.status is TaskStatus.PROCESSING and iterations > 0:
            return
        ids = {"task_id": task.id, "task_type": task.type}
        safe_call("state_change_callback", self.state_change_callback, task, **ids)
        if task.status is TaskStatus.SUCCESS:
            safe_call("on_done", self.on_done, task, **ids)
        elif task.status is TaskStatus.CANCELLED:
            safe_call("on_abort", self.on_abort, task, **ids)
        elif task.status is TaskStatus.FAILED:
            if task.error is not None and task.error.name == MAX_ITERATIONS_ERROR:
                safe_call("on_max_iterations", self.on_max_iterations, task, **ids)
            safe_call("on_error", self.on_error, task, **ids)


def _describe_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(input)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _hook(name: str, value: object) -> Any:
    if value is not None and not callable(value):
        raise TaskValidationError(name, f"must be callable or None, got {type(value).__name__}")
    return value


def build_definition(run: Any, **fields: Any) -> TaskDefinition:
    """Check the ``definition`` arguments; raise ``TaskValidationError`` naming the bad one."""
    def_id = v.user_task_type("id", fields["id"])
    title = fields.get("title")
    if title is None:
        title = def_id
    if not isinstance(title, str) or not title.strip():
        raise TaskValidationError("title", f"must be a non-empty str, got {safe_repr(title)}")
    description = fields.get("description")
    if description is not None and not isinstance(description, str):
        raise TaskValidationError("description", f"must be a str or None, got {type(description).__name__}")
    max_iterations = v.strict_int("max_iterations", fields.get("max_iterations"), minimum=1,
                                  maximum=limits.MAX_ITERATIONS)
    model = fields.get("input_model")
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TaskValidationError("input_model", f"must be a pydantic model class or None, got {safe_repr(model)}")
    private = fields.get("private", False)
    if not isinstance(private, bool):
        raise TaskValidationError("private", f"must be a bool, got {safe_repr(private)}")
    if not callable(run):
        raise TaskValidationError("run", f"must be a function taking a TaskContext, got {type(run).__name__}")
    positive = limits.seconds("soft_time_limit", fields.get("soft_time_limit"), minimum=0)
    if positive is not None and positive <= 0:
        raise TaskValidationError("soft_time_limit", f"must be more than 0 seconds, got {positive}")
    return TaskDefinition(
        id=def_id,
        title=title,
        run=run,
        description=description,
        max_iterations=DEFAULT_MAX_ITERATIONS if max_iterations is None else max_iterations,
        input_model=model,
        private=private,
        retain_for=v.retain_for_ms("retain_for", fields.get("retain_for")),
        soft_time_limit=positive,
        **{name: _hook(name, fields.get(name)) for name in (
            "on_before_trigger", "on_done", "on_error", "on_abort", "on_max_iterations", "state_change_callback",
        )},
    )


def make_spec(definition: TaskDefinition, execute: Callable[[Any, Any], Any],
              on_lost: Callable[[Any], Any]) -> HandlerSpec:
    return HandlerSpec(
        task_type=definition.id,
        function=definition.run,
        module=inspect.getmodule(definition.run),
        callback=definition.notify,
        execute=execute,
        on_lost=on_lost,
    )
