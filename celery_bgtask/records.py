"""The public ``BackgroundTask`` model of a stored ``TaskRecord``."""

from __future__ import annotations

import json
from typing import Any

from .core.record import TaskRecord
from .models import BackgroundTask, ErrorInfo, TaskStatus
from .timeutil import ms_to_dt


def _dt(ms: int | None) -> Any:
    return None if ms is None else ms_to_dt(ms)


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def to_public(record: TaskRecord) -> BackgroundTask[Any, Any]:
    """What users see of a record: dates as UTC datetimes, JSON decoded, an ``ErrorInfo``."""
    error = _json(record.error)
    extra: dict[str, Any] = {}
    if record.iterations:
        extra["iterations"] = record.iterations
    if record.worker:
        extra["worker"] = record.worker
    return BackgroundTask[Any, Any](
        id=record.id,
        type=record.type,
        thread_id=record.thread_id,
        date_created=ms_to_dt(record.date_created),
        date_modified=ms_to_dt(record.date_modified),
        date_completed=_dt(record.date_completed),
        date_cancelled=_dt(record.date_cancelled),
        date_retain_until=_dt(record.date_retain_until),
        retry_interval=record.retry_interval,
        retries_remaining=record.retries_remaining,
        status=TaskStatus(record.status),
        payload=_json(record.payload),
        result=_json(record.result),
        error=None if error is None else ErrorInfo.model_validate(error),
        **extra,
    )
