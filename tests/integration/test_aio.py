"""The asyncio twins run the same operations, off the event loop, with the same errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery

from celery_bgtask import TaskStatus, TaskValidationError
from celery_bgtask.aio import AsyncBackgroundTaskComponent, AsyncTaskSchedulerComponent
from celery_bgtask.timeutil import now_ms
from tests.helpers import wait_for
from tests.integration import scheduled_jobs


def test_async_component_creates_queries_and_runs_tasks(
    make_component: Any, worker: Any
) -> None:
    bg = make_component()
    abg = AsyncBackgroundTaskComponent(component=bg)
    abg.register_handler("echo", "tests.integration.handlers", "echo")

    async def produce() -> tuple[str, list[str]]:
        one = await abg.create("echo", {"n": 1}, retain_for=-1)
        many = await abg.create_many("echo", [{"n": 2}, {"n": 3}], retain_for=-1, chunk_size=2)
        with pytest.raises(TaskValidationError) as err:
            await abg.create("echo", {"n": 4}, retry_count="2")  # type: ignore[arg-type]
        assert err.value.field == "retry_count"
        return one, many

    one, many = asyncio.run(produce())
    with worker(bg.app):
        wait_for(lambda: all(bg.get(u).status is TaskStatus.SUCCESS for u in [one, *many]), what="three successes")

    async def read() -> None:
        task = await abg.get(one)
        assert task is not None and task.result == {"echo": {"n": 1}}
        page = await abg.query(task_type="echo", task_status=TaskStatus.SUCCESS, limit=2)
        assert len(page.entities) == 2 and page.cursor is not None
        assert await abg.remove(one) is True
        assert await abg.get(one) is None
        assert await abg.cancel(many[0]) is False  # already finished

    asyncio.run(read())


def test_async_component_needs_an_app_or_a_component() -> None:
    with pytest.raises(TypeError):
        AsyncBackgroundTaskComponent()


def test_async_scheduler_adds_lists_and_removes(
    celery_app_factory: Callable[..., Celery], database_url: str
) -> None:
    sched = AsyncTaskSchedulerComponent(celery_app_factory(), database_url, retain_for=-1)

    async def scenario() -> None:
        first = now_ms() + 900_000
        await sched.add_task("daily-sync", [{"nextTriggerTime": first, "intervalDays": 1}], scheduled_jobs.nightly)
        info = await sched.tasks_info()
        assert info.model_dump(by_alias=True, exclude_none=True) == {
            "tasks": {"daily-sync": [{"nextTriggerTime": first, "intervalDays": 1}]}
        }
        with pytest.raises(TaskValidationError) as err:
            await sched.add_task("bad", [{"intervalDays": 0}], scheduled_jobs.nightly)
        assert err.value.field == "times[0].intervalDays"
        assert await sched.pause_task("daily-sync") is True
        assert (await sched.tasks_info()).tasks["daily-sync"][0].paused is True
        assert await sched.resume_task("daily-sync") is True
        assert (await sched.tasks_info()).tasks["daily-sync"][0].next_trigger_time == first
        assert await sched.remove_task("daily-sync") is True
        assert (await sched.tasks_info()).tasks == {}

    try:
        asyncio.run(scenario())
    finally:
        sched.sync.close()
