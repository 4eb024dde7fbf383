"""``Definitions``: the task definitions of one component, composed into it (not mixed in).

A definition is registered in the component's handler table like any handler, with
``HandlerSpec.execute`` / ``on_lost`` pointing at its ``Iterations``, so the worker claims,
leases, commits and recovers it with the same machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import TaskValidationError
from ..handlers import HandlerSpec
from ..reprs import safe_repr
from ..store.base import TaskStore
from .iteration import Iterations
from .model import DefinitionInfo, RunFunction, TaskDefinition, build_definition, make_spec


class Definitions:
    """Shares the component's handler table: a definition's id is a task type of its own."""

    def __init__(self, handlers: dict[str, HandlerSpec], store: TaskStore, max_payload_bytes: int,
                 run_soft_limit: Callable[[], float | None]) -> None:
        self.by_id: dict[str, TaskDefinition] = {}
        self._handlers = handlers
        self._store = store
        self._max_payload_bytes = max_payload_bytes
        self._run_soft_limit = run_soft_limit

    def decorator(self, fields: Mapping[str, Any]) -> Callable[[RunFunction], RunFunction]:
        """``@bg.definition(...)``: checks ``fields`` when applied, returns the function unchanged."""

        def register(run: RunFunction) -> RunFunction:
            self.register(build_definition(run, **fields))
            return run

        return register

    def register(self, definition: TaskDefinition) -> None:
        existing = self._handlers.get(definition.id)
        if existing is not None and definition.id not in self.by_id:
            raise TaskValidationError("id", f"{safe_repr(definition.id)} is already the type of a registered handler")
        steps = Iterations(definition, self._store, self._max_payload_bytes, self._run_soft_limit)
        self.by_id[definition.id] = definition
        self._handlers[definition.id] = make_spec(definition, steps.execute, steps.on_lost)

    def forget(self, definition_id: str) -> None:
        self.by_id.pop(definition_id, None)

    def infos(self, include_private: bool = True) -> list[DefinitionInfo]:
        """The registered definitions (id, title, description, private), in registration order."""
        return [d.info() for d in self.by_id.values() if include_private or not d.private]
