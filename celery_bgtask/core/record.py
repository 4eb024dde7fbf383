"""``TaskRecord``: one stored task, as every layer below the public API sees it.

Instants are epoch milliseconds and JSON columns (payload, result, error) stay JSON text, so
a store hands records over without decoding anything; ``public`` turns one into the
``BackgroundTask`` model users see. The fields follow the columns of ``bgtask_tasks`` in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: str
    type: str
    thread_id: str
    status: str
    date_created: int
    date_modified: int
    date_completed: int | None
    date_cancelled: int | None
    date_retain_until: int | None
    #: Resolved retention: -1 forever, 0 remove on finish, N ms after the last change.
    retain_for: int
    retry_interval: int | None
    retries_remaining: int | None
    payload: str | None
    result: str | None
    error: str | None
    #: Due time while pending (or between iterations).
    next_run_at: int | None
    #: The stamp of the last wake-up published for it (None: none is live).
    enqueued_at: int | None
    #: The fencing counter: +1 per claim.
    attempt: int
    #: A running claim is valid until then.
    lease_until: int | None
    worker: str | None
    iterations: int
    abort_requested: bool


#: The field names, in column order.
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TaskRecord))


def record_of(row: Iterable[Any] | None) -> TaskRecord | None:
    """The record of a row of ``bgtask_tasks`` (all its columns, in order), or None."""
    return None if row is None else TaskRecord(*row)


def as_row(record: TaskRecord) -> dict[str, Any]:
    """The record as a row of ``bgtask_tasks``: column name -> value."""
    return {name: getattr(record, name) for name in FIELDS}
