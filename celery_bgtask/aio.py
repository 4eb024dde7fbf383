"""Asyncio twins of the components, for asyncio applications (FastAPI, aiohttp, ...).

Each coroutine runs the synchronous operation in a worker thread (``asyncio.to_thread``),
so the event loop never blocks on the database or the broker. The records, the rules and
the errors are exactly those of :class:`BackgroundTaskComponent` and
:class:`TaskSchedulerComponent`; registration (handlers, definitions) stays synchronous
because it does no I/O. ``.sync`` is the wrapped component, for anything not listed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

from celery import Celery
from sqlalchemy import Engine

from .component import BackgroundTaskComponent
from .handlers import StateCallback
from .models import (
    BackgroundTask,
    HandlerOptions,
    QueryResult,
    ScheduledTaskInfo,
    ScheduledTaskTime,
    SortDirection,
    TaskStatus,
)
from .scheduler import TaskSchedulerComponent

P = ParamSpec("P")
R = TypeVar("R")


async def _off_loop(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return await asyncio.to_thread(fn, *args, **kwargs)


class AsyncBackgroundTaskComponent:
    """``BackgroundTaskComponent`` with coroutine methods. Takes the same arguments, or ``component=``."""

    def __init__(
        self,
        app: Celery | None = None,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        component: BackgroundTaskComponent | None = None,
        **settings: Any,
    ) -> None:
        if component is None:
            if app is None:
                raise TypeError("AsyncBackgroundTaskComponent needs a Celery app or component=")
            component = BackgroundTaskComponent(app, database_url, engine=engine, **settings)
        self.sync = component

    def register_handler(
        self,
        task_type: str,
        module: str | Callable[..., Any],
        method: str | None = None,
        state_change_callback: StateCallback | None = None,
        options: HandlerOptions | dict[str, Any] | None = None,
    ) -> None:
        self.sync.register_handler(task_type, module, method, state_change_callback, options)

    def unregister_handler(self, task_type: str) -> None:
        self.sync.unregister_handler(task_type)

    def definition(self, *args: Any, **kwargs: Any) -> Any:
        """``@bg.definition(...)``, as on the synchronous component."""
        return self.sync.definition(*args, **kwargs)

    async def create(
        self,
        task_type: str,
        payload: Any = None,
        *,
        retry_count: int | None = None,
        retry_interval: int | timedelta | None = None,
        retain_for: int | timedelta | None = None,
    ) -> str:
        return await _off_loop(self.sync.create, task_type, payload, retry_count=retry_count,
                               retry_interval=retry_interval, retain_for=retain_for)

    async def create_many(self, task_type: str, payloads: Sequence[Any], **options: Any) -> list[str]:
        return await _off_loop(self.sync.create_many, task_type, payloads, **options)

    async def get(self, task_id: str) -> BackgroundTask[Any, Any] | None:
        return await _off_loop(self.sync.get, task_id)

    async def query(
        self,
        task_type: str | None = None,
        task_status: TaskStatus | str | None = None,
        sort_property: str = "dateCreated",
        sort_direction: SortDirection | str = SortDirection.ASCENDING,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> QueryResult:
        return await _off_loop(self.sync.query, task_type, task_status, sort_property, sort_direction, cursor, limit)

    async def retry(self, task_id: str) -> bool:
        return await _off_loop(self.sync.retry, task_id)

    async def cancel(self, task_id: str) -> bool:
        return await _off_loop(self.sync.cancel, task_id)

    async def remove(self, task_id: str) -> bool:
        return await _off_loop(self.sync.remove, task_id)

    async def trigger(
        self,
        definition_id: str,
        input: Any = None,
        delay: float | timedelta | None = None,
        retain_for: int | timedelta | None = None,
    ) -> str:
        return await _off_loop(self.sync.trigger, definition_id, input, delay, retain_for)

    async def abort(self, task_id: str, message: str | None = None) -> bool:
        return await _off_loop(self.sync.abort, task_id, message)


class AsyncTaskSchedulerComponent:
    """``TaskSchedulerComponent`` with coroutine methods. Takes the same arguments, or ``scheduler=``."""

    def __init__(
        self,
        app: Celery | None = None,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        scheduler: TaskSchedulerComponent | None = None,
        **settings: Any,
    ) -> None:
        if scheduler is None:
            if app is None:
                raise TypeError("AsyncTaskSchedulerComponent needs a Celery app or scheduler=")
            scheduler = TaskSchedulerComponent(app, database_url, engine=engine, **settings)
        self.sync = scheduler

    async def add_task(
        self, task_id: str, times: Sequence[ScheduledTaskTime | dict[str, Any]], task_callback: Any
    ) -> None:
        await _off_loop(self.sync.add_task, task_id, times, task_callback)

    async def remove_task(self, task_id: str) -> bool:
        return await _off_loop(self.sync.remove_task, task_id)

    async def tasks_info(self) -> ScheduledTaskInfo:
        return await _off_loop(self.sync.tasks_info)

    async def pause_task(self, task_id: str) -> bool:
        return await _off_loop(self.sync.pause_task, task_id)

    async def resume_task(self, task_id: str) -> bool:
        return await _off_loop(self.sync.resume_task, task_id)
