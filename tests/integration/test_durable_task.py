"""``@bg.task``: the drop-in for ``@app.task`` registers a handler of its type, and
``create`` / ``delay`` / ``create_many`` make records with the decorator's options as defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery, states

from celery_bgtask import BackgroundTaskComponent, TaskStatus, TaskValidationError
from celery_bgtask.ids import parse_task_id
from tests.helpers import status_of, wait_for

IN_PROCESS: dict[str, Any] = {"disable_sync_subtasks": False}  # see test_result_backend


def double(payload: dict[str, Any]) -> int:
    return int(payload["n"]) * 2


@pytest.fixture
def bg(make_component: Callable[..., BackgroundTaskComponent],
       celery_app_factory: Callable[..., Celery]) -> BackgroundTaskComponent:
    return make_component(celery_app_factory(result_backend="bgtask://"), default_retain_for=-1)


def test_the_type_defaults_to_module_qualname_and_runs_on_a_worker(bg: BackgroundTaskComponent, worker: Any) -> None:
    doubled = bg.task(double)
    named = bg.task("doubler", retry_count=3, retry_interval=5000, retain_for=86_400_000)(double)
    assert doubled.type == f"{__name__}.double" and named.type == "doubler"
    assert doubled({"n": 2}) == 4  # calling it runs the function here, as a Celery task does
    with worker(bg.app):
        res = doubled.delay({"n": 21})
        assert res.id == parse_task_id(res.id) and res.get(timeout=10, **IN_PROCESS) == 42
        urn = named.create({"n": 5})
        wait_for(lambda: status_of(bg, urn) is TaskStatus.SUCCESS, what="the named type to run")
        many = named.create_many([{"n": 1}, {"n": 2}], chunk_size=2)
        wait_for(lambda: all(status_of(bg, u) is TaskStatus.SUCCESS for u in many), what="the chunk to run")
    assert res.state == states.SUCCESS
    task = bg.get(urn)
    assert task is not None and task.type == "doubler" and task.result == 10
    assert task.retries_remaining == 3 and task.retry_interval == 5000
    assert task.date_retain_until is not None and task.date_completed is not None
    assert int((task.date_retain_until - task.date_completed).total_seconds()) == 86_400


def test_a_call_overrides_the_decorators_options(bg: BackgroundTaskComponent) -> None:
    named = bg.task("doubler", retry_count=3, retry_interval=5000)(double)
    task = bg.get(named.create({"n": 1}, retry_count=1))
    assert task is not None and task.retries_remaining == 1 and task.retry_interval == 5000
    task = bg.get(named.create({"n": 1}))
    assert task is not None and task.retries_remaining == 3


def test_bad_options_or_type_are_refused_at_decoration(bg: BackgroundTaskComponent) -> None:
    with pytest.raises(TaskValidationError, match=r"^retry_count: "):
        bg.task("doubler", retry_count=-5)
    with pytest.raises(TaskValidationError, match=r"^task_type: "):
        bg.task(42)  # type: ignore[arg-type]
    with pytest.raises(TaskValidationError, match=r"^task_type: "):
        bg.task("celery_bgtask.reserved")(double)
    assert bg.handler("doubler") is None
