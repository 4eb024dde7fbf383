"""Webiny-style task definitions: ``@bg.definition(...)``, ``bg.trigger()``, ``bg.abort()``.

A definition is a task type whose function takes a ``TaskContext`` and answers with a
response (done, continue, error, aborted). It is registered in the component's handler
table like any handler, with ``HandlerSpec.execute`` / ``on_lost`` pointing at
``iteration``, so the worker claims, leases, commits and recovers it with the same
machinery. Its hooks (``on_done`` and friends) ride on the type's state-change
callback: they fire wherever the terminal state is committed (the worker, the sweeper,
or the process that aborted a waiting task), once, after the commit.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from . import limits
from . import validation as v
from .errors import HandlerNotFoundError, TaskValidationError
from .handlers import HandlerSpec, StateCallback, safe_call
from .ids import to_urn
from .models import BackgroundTask, TaskStatus
from .reprs import safe_repr
from .resilience import guarded
from .timeutil import now_ms

if TYPE_CHECKING:
    from sqlalchemy import Row

    from .config import Settings
    from .context import TaskContext
    from .store.tasks import TaskStore

log = logging.getLogger(__name__)

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


class DefinitionsMixin:
    """The definition half of ``BackgroundTaskComponent`` (kept here so each file has one concern)."""

    if TYPE_CHECKING:
        settings: Settings
        store: TaskStore
        _handlers: dict[str, HandlerSpec]
        _definitions: dict[str, TaskDefinition]

        def _ensure(self) -> None: ...
        def _build_rows(self, task_type: str, payloads: Sequence[Any], *, retry_count: Any, retry_interval: Any,
                        retain_for: Any, itemised: bool = False, field: str = "payload",
                        next_run_at: int | None = None) -> list[dict[str, Any]]: ...
        def _commit_and_publish(self, rows: list[dict[str, Any]]) -> None: ...
        def _notify(self, row: Row[Any] | BackgroundTask[Any, Any]) -> None: ...
        def _finish_retention(self, row: Row[Any]) -> None: ...

    def definition(
        self,
        id: str,
        title: str | None = None,
        description: str | None = None,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        input_model: type[BaseModel] | None = None,
        private: bool = False,
        retain_for: int | timedelta | None = None,
        on_before_trigger: Callable[[Any], Any] | None = None,
        on_done: Hook | None = None,
        on_error: Hook | None = None,
        on_abort: Hook | None = None,
        on_max_iterations: Hook | None = None,
        soft_time_limit: float | timedelta | None = None,
        state_change_callback: StateCallback | None = None,
    ) -> Callable[[RunFunction], RunFunction]:
        """Decorator: register the decorated ``run(ctx)`` as the definition ``id``.

        ``id`` is the task type of its records; it must not be the type of a handler.
        ``retain_for`` (ms) sits between ``trigger``'s and the component default;
        ``soft_time_limit`` (seconds) is what ``ctx.runtime.is_close_to_timeout()`` measures
        against. Returns the function unchanged.
        """
        fields = dict(
            id=id, title=title, description=description, max_iterations=max_iterations, input_model=input_model,
            private=private, retain_for=retain_for, on_before_trigger=on_before_trigger, on_done=on_done,
            on_error=on_error, on_abort=on_abort, on_max_iterations=on_max_iterations,
            soft_time_limit=soft_time_limit, state_change_callback=state_change_callback,
        )
        v.user_task_type("id", id)

        def register(run: RunFunction) -> RunFunction:
            self._register_definition(build_definition(run, **fields))
            return run

        return register

    def _register_definition(self, definition: TaskDefinition) -> None:
        from .iteration import Iterations

        existing = self._handlers.get(definition.id)
        if existing is not None and definition.id not in self._definitions:
            raise TaskValidationError("id", f"{safe_repr(definition.id)} is already the type of a registered handler")
        steps = Iterations(self, definition)  # type: ignore[arg-type]
        self._definitions[definition.id] = definition
        self._handlers[definition.id] = make_spec(definition, steps.execute, steps.on_lost)

    def get_definition(self, definition_id: str) -> TaskDefinition | None:
        return self._definitions.get(definition_id)

    def definitions(self, include_private: bool = True) -> list[DefinitionInfo]:
        """The registered definitions (id, title, description, private), in registration order."""
        return [d.info() for d in self._definitions.values() if include_private or not d.private]

    @guarded
    def trigger(
        self,
        definition_id: str,
        input: Any = None,
        delay: float | timedelta | None = None,
        retain_for: int | timedelta | None = None,
    ) -> str:
        """Start a run of a definition; return the task URN.

        ``input`` is validated against the definition's ``input_model`` (a failure raises
        ``TaskValidationError`` listing each invalid field); then ``on_before_trigger(input)``
        runs, and whatever it raises reaches you unchanged. Only then is the record written
        (``pending``) and queued; with ``delay`` (seconds or a ``timedelta``) it becomes due
        that much later. ``retain_for`` (ms) overrides the definition's, which overrides the
        component default.
        """
        v.task_type("definition_id", definition_id)
        definition = self._definitions.get(definition_id)
        if definition is None:
            raise HandlerNotFoundError(definition_id)
        wait = limits.seconds("delay", delay)
        due = None if not wait else now_ms() + int(wait * 1000)
        [row] = self._build_rows(definition.id, [input], retry_count=None, retry_interval=None,
                                 retain_for=retain_for, field="input", next_run_at=due)
        self._commit_and_publish([row])
        log.info("definition %s triggered as task %s", definition.id, row["id"])
        return to_urn(row["id"])

    @guarded
    def abort(self, task_id: str, message: str | None = None) -> bool:
        """Ask a task to stop, from any process. Returns False when it had already finished.

        A waiting task (pending, or between iterations) is cancelled at once. A running one
        gets its ``abort_requested`` flag set: ``ctx.runtime.is_aborted()`` turns true, and the
        task becomes ``cancelled`` when its run returns ``aborted()`` or at the next iteration
        boundary.
        """
        from .abort import abort_task

        return abort_task(self, task_id, message)  # type: ignore[arg-type]
