"""The handler registry: task type -> how to run it and whom to tell about changes."""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ValidationError

from .core.outcome import Outcome
from .errors import HandlerImportError, TaskValidationError
from .models import BackgroundTask, HandlerOptions
from .reprs import safe_repr

log = logging.getLogger(__name__)

StateCallback = Callable[[BackgroundTask[Any, Any]], Any]
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass
class HandlerSpec:
    """A registered handler. ``run`` takes the stored payload (already JSON-decoded)."""

    task_type: str
    function: Callable[..., Any]
    module: ModuleType | None
    callback: StateCallback | None = None
    options: HandlerOptions = field(default_factory=HandlerOptions)
    payload_model: type[BaseModel] | None = None
    #: Set by task definitions: runs one iteration of the record and says how it ended.
    execute: Callable[[Any, Any], Outcome] | None = None
    #: Set by task definitions: the outcome recorded when a run's worker died (lease expired).
    on_lost: Callable[[Any], Outcome] | None = None

    def convert_payload(self, payload: Any) -> Any:
        """Validate/convert the payload through the handler's pydantic annotation, if any."""
        if self.payload_model is None or payload is None:
            return payload
        return self.payload_model.model_validate(payload)

    def lifecycle(self, name: str | None) -> Callable[[], Any] | None:
        """The ``initialise_method`` / ``shutdown_method`` function of the handler's module."""
        if name is None:
            return None
        fn = getattr(self.module, name, None) if self.module is not None else None
        if not callable(fn):
            raise TaskValidationError("options", f"{safe_repr(name)} is not a function in the handler's module")
        return typing.cast(Callable[[], Any], fn)


def _payload_model(fn: Callable[..., Any]) -> type[BaseModel] | None:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if not params:
        return None
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        return None
    hint = hints.get(params[0].name)
    return hint if isinstance(hint, type) and issubclass(hint, BaseModel) else None


def build_spec(
    task_type: str,
    module: str | Callable[..., Any],
    method: str | None,
    callback: StateCallback | None,
    options: HandlerOptions | dict[str, Any] | None,
) -> HandlerSpec:
    """Resolve and check a ``register_handler`` call; raise ``TaskValidationError`` if it is off."""
    if options is None:
        opts = HandlerOptions()
    elif isinstance(options, HandlerOptions):
        opts = options
    elif isinstance(options, dict):
        try:
            opts = HandlerOptions.model_validate(options)
        except ValidationError as exc:
            raise TaskValidationError("options", str(exc)) from None
    else:
        raise TaskValidationError("options", f"must be HandlerOptions or a dict, got {type(options).__name__}")
    if callback is not None and not callable(callback):
        raise TaskValidationError("state_change_callback", "must be callable or None")

    mod: ModuleType | None
    if callable(module):
        if method is not None:
            raise TaskValidationError("method", "must be omitted when a callable is passed as module")
        fn = module
        mod = inspect.getmodule(fn)
    else:
        if not isinstance(module, str) or not _DOTTED.match(module):
            raise TaskValidationError("module", f"must be a dotted import path or a callable, got {safe_repr(module)}")
        if not isinstance(method, str) or not method.isidentifier():
            raise TaskValidationError("method",
                                      f"must be a function name in {safe_repr(module)}, got {safe_repr(method)}")
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            raise HandlerImportError(f"module: cannot import {safe_repr(module)}: {exc}") from exc
        found = getattr(mod, method, None)
        if not callable(found):
            raise TaskValidationError("method", f"{module}.{method} is not a function")
        fn = found
    spec = HandlerSpec(task_type, fn, mod, callback, opts, _payload_model(fn))
    spec.lifecycle(opts.initialise_method)
    spec.lifecycle(opts.shutdown_method)
    return spec


def safe_call(what: str, fn: Callable[..., Any] | None, *args: Any, task_id: str = "", task_type: str = "") -> None:
    """Call a user hook; log and swallow anything it raises (it never changes an outcome)."""
    if fn is None:
        return
    try:
        fn(*args)
    except Exception:
        log.exception("%s raised for task %s (type %s); the task's outcome is unchanged", what, task_id, task_type)
