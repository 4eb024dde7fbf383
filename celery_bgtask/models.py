"""Pydantic models of the BackgroundTask contract (TWIN ``background-task-models``).

Every model reads snake_case or camelCase, and ``model_dump(mode="json", by_alias=True,
exclude_none=True)`` gives exactly the TWIN JSON shape: camelCase keys and dates as
``2026-03-09T10:30:00.000Z``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
)
from pydantic.alias_generators import to_camel

from .limits import MAX_DURATION_MS, MAX_WORKER_COUNT
from .timeutil import iso_z, to_utc_ms

T = TypeVar("T")
U = TypeVar("U")

UtcDatetime = Annotated[
    datetime,
    AfterValidator(to_utc_ms),
    PlainSerializer(iso_z, return_type=str, when_used="json"),
]
"""An aware UTC datetime at millisecond precision, serialised as ``...T10:30:00.000Z``."""


class _CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
    )


class TaskStatus(enum.StrEnum):
    """Where a task is in its life. ``SUCCESS``, ``FAILED`` and ``CANCELLED`` are terminal."""

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED})


class SortDirection(enum.StrEnum):
    ASCENDING = "asc"
    DESCENDING = "desc"


class ErrorInfo(_CamelModel):
    """TWIN ``IError``: what went wrong in a task."""

    name: str
    message: str
    source: str | None = None
    properties: dict[str, Any] | None = None
    stack: str | None = None
    inner: ErrorInfo | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, with_stack: bool = True) -> ErrorInfo:
        """``ValueError("boom")`` becomes ``name="ValueError", message="boom"``."""
        import traceback

        stack = "".join(traceback.format_exception(exc)) if with_stack else None
        cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        return cls(
            name=type(exc).__name__,
            message=str(exc),
            source=type(exc).__module__,
            stack=stack,
            inner=cls.from_exception(cause, with_stack=False) if cause is not None else None,
        )


class BackgroundTask(_CamelModel, Generic[T, U]):
    """One task record (TWIN ``IBackgroundTask``). ``id`` is the bare 32-hex id."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    thread_id: str
    date_created: UtcDatetime
    date_modified: UtcDatetime
    date_completed: UtcDatetime | None = None
    date_cancelled: UtcDatetime | None = None
    date_retain_until: UtcDatetime | None = None
    retry_interval: int | None = None
    retries_remaining: int | None = None
    status: TaskStatus
    payload: T | None = None
    result: U | None = None
    error: ErrorInfo | None = None


PositiveInt = Annotated[StrictInt, Field(ge=1)]


def interval_ms(
    days: int | None, hours: int | None, minutes: int | None, seconds: int | None = None
) -> int | None:
    """A trigger time's repeat interval in ms (exact: a day is 24 h), or None for a one-off."""
    if days is None and hours is None and minutes is None and seconds is None:
        return None
    return ((((days or 0) * 24 + (hours or 0)) * 60 + (minutes or 0)) * 60 + (seconds or 0)) * 1000


class ScheduledTaskTime(_CamelModel):
    """One trigger time of a scheduled task (TWIN ``IScheduledTaskTime``).

    ``next_trigger_time`` is epoch milliseconds. The intervals add up; none at all means
    the time fires once. ``cron`` (five fields, local time in ``timezone``, default UTC)
    replaces the interval. ``paused`` and ``last_*`` are filled in by ``tasks_info`` only
    (outside TWIN's keys; None values are left out of its JSON).
    """

    model_config = ConfigDict(extra="forbid")

    next_trigger_time: Annotated[StrictInt, Field(ge=0)] | None = None
    interval_days: PositiveInt | None = None
    interval_hours: PositiveInt | None = None
    interval_minutes: PositiveInt | None = None
    interval_seconds: PositiveInt | None = None
    cron: str | None = None
    timezone: str | None = None
    paused: bool | None = None
    last_fired_at: int | None = None
    last_task_id: str | None = None
    last_status: str | None = None

    @property
    def interval_ms(self) -> int | None:
        """The repeat interval in milliseconds, or None for a one-off."""
        return interval_ms(self.interval_days, self.interval_hours, self.interval_minutes, self.interval_seconds)


class ScheduledTaskInfo(_CamelModel):
    """TWIN ``IScheduledTaskInfo``: every scheduled task id with its times."""

    tasks: dict[str, list[ScheduledTaskTime]]


class QueryResult(_CamelModel):
    """One page of :meth:`BackgroundTaskComponent.query`. ``cursor`` is None on the last page."""

    entities: list[BackgroundTask[Any, Any]]
    cursor: str | None = None


class HandlerOptions(_CamelModel):
    """Options of :meth:`BackgroundTaskComponent.register_handler` (TWIN handler options).

    - ``max_worker_count``: at most this many tasks of the type run at once, across all
      workers and hosts (1 to 10,000).
    - ``initialise_method`` / ``shutdown_method``: function names in the handler's module,
      run once per worker process before its first task of the type, and when the process
      stops or has been idle for ``idle_shutdown_timeout`` ms (at most 100 years).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_worker_count: Annotated[StrictInt, Field(ge=1, le=MAX_WORKER_COUNT)] | None = None
    idle_shutdown_timeout: Annotated[StrictInt, Field(ge=1, le=MAX_DURATION_MS)] | None = None
    initialise_method: str | None = None
    shutdown_method: str | None = None
