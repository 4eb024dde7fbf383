"""The ``celery_bgtask.`` task types are the package's own: no caller creates, handles or defines one.

The handler of ``SCHEDULED_TYPE`` runs a scheduled callback, so a record of that type made
through ``create`` (or a handler put in its place) would run code the scheduler never checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from celery_bgtask import SCHEDULED_TYPE, BackgroundTaskComponent, TaskContext, TaskValidationError
from celery_bgtask.scheduling.firing import ScheduledCall
from tests.integration import handlers

HOSTILE = {"scheduleId": "x", "callback": "function:os:getpid"}
RESERVED = [SCHEDULED_TYPE, "celery_bgtask.other"]


def _run(ctx: TaskContext[Any]) -> Any:
    return ctx.response.done(None)


def _builtin_is_installed(bg: BackgroundTaskComponent) -> bool:
    spec = bg.handler(SCHEDULED_TYPE)
    return spec is not None and isinstance(getattr(spec.function, "__self__", None), ScheduledCall)


@pytest.mark.parametrize("task_type", RESERVED)
def test_creating_a_task_of_a_reserved_type_is_refused_and_writes_nothing(
    make_component: Callable[..., BackgroundTaskComponent], task_type: str
) -> None:
    bg = make_component()
    attempts: list[Callable[[], Any]] = [
        lambda: bg.create(task_type, HOSTILE),
        lambda: bg.create(task_type),
        lambda: bg.create_many(task_type, [HOSTILE, HOSTILE]),
        lambda: bg.create_many(task_type, []),
    ]
    for attempt in attempts:
        with pytest.raises(TaskValidationError) as err:
            attempt()
        assert err.value.field == "task_type"
        assert "'celery_bgtask.' is reserved" in err.value.rule and task_type in err.value.rule
    assert bg.query().entities == []
    assert bg.query(task_type=SCHEDULED_TYPE).entities == []  # querying the type still works


@pytest.mark.parametrize("task_type", RESERVED)
def test_handlers_and_definitions_cannot_take_a_reserved_type(
    make_component: Callable[..., BackgroundTaskComponent], task_type: str
) -> None:
    bg = make_component()
    with pytest.raises(TaskValidationError, match=r"^task_type: the prefix 'celery_bgtask\.' is reserved"):
        bg.register_handler(task_type, handlers.echo)
    with pytest.raises(TaskValidationError, match=r"^task_type: the prefix 'celery_bgtask\.' is reserved"):
        bg.unregister_handler(task_type)
    with pytest.raises(TaskValidationError, match=r"^id: the prefix 'celery_bgtask\.' is reserved"):
        bg.definition(id=task_type)(_run)
    assert bg.definitions() == []
    assert bg.handler_types() == [SCHEDULED_TYPE]
    assert _builtin_is_installed(bg)  # the scheduled-task runner was neither replaced nor removed


def test_ordinary_types_and_lookalikes_are_still_accepted(
    make_component: Callable[..., BackgroundTaskComponent],
) -> None:
    bg = make_component()
    bg.register_handler("celery_bgtask", handlers.echo)  # the prefix is the dotted namespace, not the word
    bg.register_handler("my.celery_bgtask.scheduled", handlers.echo)
    types = ["celery_bgtask", "my.celery_bgtask.scheduled"]
    urns = [bg.create(task_type, n) for n, task_type in enumerate(types)]
    assert [t.type for t in (bg.get(u) for u in urns) if t is not None] == types
    assert _builtin_is_installed(bg)
