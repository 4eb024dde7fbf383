"""What one run of a task came to, and the record update each outcome means."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic_core import PydanticSerializationError
from sqlalchemy import Row

from .limits import without_surrogates
from .models import ErrorInfo, TaskStatus
from .records import retain_until

Kind = Literal["success", "failed", "continue", "cancelled"]


@dataclass
class Outcome:
    """``success`` (with ``result`` JSON text), ``failed`` (with ``error``; ``retryable`` says
    whether retries may apply), ``continue`` (definitions: ``payload`` is the merged input,
    ``wait`` seconds until the next iteration) or ``cancelled``.
    """

    kind: Kind
    result: str | None = None
    error: ErrorInfo | None = None
    retryable: bool = True
    payload: str | None = None
    wait: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The handler's own exception, when it raised one: re-raised to Celery after the commit,
    #: so the worker log and Celery's events show the user's traceback rather than ours.
    exception: BaseException | None = field(default=None, compare=False)


def _error_json(error: ErrorInfo | None) -> str | None:
    """The error as JSON text. A lone surrogate (an exception message or stack built from
    undecodable bytes) becomes U+FFFD: it cannot be stored, and the failure must be."""
    if error is None:
        return None
    try:
        return error.model_dump_json(exclude_none=True, by_alias=True)
    except PydanticSerializationError:
        data = without_surrogates(error.model_dump(mode="json", exclude_none=True, by_alias=True))
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def record_update(row: Row[Any], outcome: Outcome, now: int) -> tuple[str, dict[str, Any]]:
    """The status the record moves to and the column values, for a run of ``row`` ending in ``outcome``.

    ``retry`` (failed with retries left) goes back to ``pending`` after ``retry_interval``.
    """
    done = {"lease_until": None, "date_modified": now, **outcome.extra}
    if outcome.kind == "success":
        return "success", {
            **done,
            "status": TaskStatus.SUCCESS.value,
            "result": outcome.result,
            "error": None,
            "date_completed": now,
            "date_retain_until": retain_until(row.retain_for, now),
            "next_run_at": None,
            "enqueued_at": None,
        }
    if outcome.kind == "continue":
        wait_ms = int((outcome.wait or 0) * 1000)
        return "continue", {
            **done,
            "status": TaskStatus.PROCESSING.value,
            "payload": outcome.payload,
            "next_run_at": now + wait_ms,
            "enqueued_at": None,
        }
    if outcome.kind == "cancelled":
        return "cancelled", {
            **done,
            "status": TaskStatus.CANCELLED.value,
            "date_cancelled": now,
            "date_retain_until": retain_until(row.retain_for, now),
            "next_run_at": None,
            "enqueued_at": None,
        }
    retries = row.retries_remaining
    if outcome.retryable and retries is not None and retries > 0:
        return "retry", {
            **done,
            "status": TaskStatus.PENDING.value,
            "retries_remaining": retries - 1,
            "error": _error_json(outcome.error),
            "next_run_at": now + (row.retry_interval or 0),
            "enqueued_at": None,
        }
    return "failed", {
        **done,
        "status": TaskStatus.FAILED.value,
        "error": _error_json(outcome.error),
        "date_completed": now,
        "date_retain_until": retain_until(row.retain_for, now),
        "next_run_at": None,
        "enqueued_at": None,
    }
