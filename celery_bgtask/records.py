"""Conversion between store rows and the public ``BackgroundTask`` model."""

from __future__ import annotations

import json
from typing import Any

from .models import BackgroundTask, ErrorInfo, TaskStatus
from .timeutil import ms_to_dt


def _dt(ms: int | None) -> Any:
    return None if ms is None else ms_to_dt(ms)


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def row_to_task(row: Any) -> BackgroundTask[Any, Any]:
    """Build the public record from a ``bgtask_tasks`` row mapping (``Row._mapping`` or a dict)."""
    error = _json(row["error"])
    extra: dict[str, Any] = {}
    if row.get("iterations"):
        extra["iterations"] = row["iterations"]
    if row.get("worker"):
        extra["worker"] = row["worker"]
    return BackgroundTask[Any, Any](
        id=row["id"],
        type=row["type"],
        thread_id=row["thread_id"],
        date_created=ms_to_dt(row["date_created"]),
        date_modified=ms_to_dt(row["date_modified"]),
        date_completed=_dt(row["date_completed"]),
        date_cancelled=_dt(row["date_cancelled"]),
        date_retain_until=_dt(row["date_retain_until"]),
        retry_interval=row["retry_interval"],
        retries_remaining=row["retries_remaining"],
        status=TaskStatus(row["status"]),
        payload=_json(row["payload"]),
        result=_json(row["result"]),
        error=None if error is None else ErrorInfo.model_validate(error),
        **extra,
    )


def retain_until(retain_for: int, modified_ms: int) -> int | None:
    """``date_retain_until`` of a finished task: None when kept forever."""
    return None if retain_for < 0 else modified_ms + retain_for
