"""``query``: one keyset page of records, its arguments checked and its cursor signed."""

from __future__ import annotations

from typing import Any

from . import validation as v
from .errors import TaskValidationError
from .models import QueryResult, SortDirection, TaskStatus
from .records import to_public
from .reprs import safe_repr
from .store import cursor as cursors
from .store.base import SORT_KEYS, PageQuery, TaskStore, sort_key

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _status(task_status: Any) -> str | None:
    if task_status is None:
        return None
    try:
        return TaskStatus(task_status).value
    except Exception:  # ValueError, or what the repr of a bad value raises
        allowed = ", ".join(s.value for s in TaskStatus)
        raise TaskValidationError("task_status", f"must be one of {allowed}, got {safe_repr(task_status)}") from None


def query_page(
    store: TaskStore,
    task_type: str | None,
    task_status: TaskStatus | str | None,
    sort_property: str,
    sort_direction: SortDirection | str,
    cursor: str | None,
    limit: int | None,
) -> QueryResult:
    """Every argument is checked before the store is read; a cursor only fits the query that made it."""
    if task_type is not None:
        v.task_type("task_type", task_type)
    status = _status(task_status)
    if not isinstance(sort_property, str) or sort_property not in SORT_KEYS:
        raise TaskValidationError(
            "sort_property",
            f"must be one of dateCreated, dateModified, dateCompleted, status, got {safe_repr(sort_property)}",
        )
    try:
        direction = SortDirection(sort_direction)
    except Exception:  # ValueError, or what the repr of a bad value raises
        got = safe_repr(sort_direction)
        raise TaskValidationError("sort_direction", f"must be 'asc' or 'desc', got {got}") from None
    size = v.strict_int("limit", limit, minimum=1, maximum=MAX_LIMIT)
    size = DEFAULT_LIMIT if size is None else size
    field = SORT_KEYS[sort_property]
    fp = cursors.fingerprint(task_type, status, field, direction.value)
    secret = store.secret()
    after = None if cursor is None else cursors.decode(secret, fp, cursor)
    records = store.page(PageQuery(task_type=task_type, status=status, sort_field=field,
                                   descending=direction is SortDirection.DESCENDING,
                                   after=None if after is None else (after[0], after[1]), limit=size + 1))
    more = len(records) > size
    records = records[:size]
    next_cursor = None
    if more:
        last = records[-1]
        next_cursor = cursors.encode(secret, fp, sort_key(last, field), last.id)
    return QueryResult(entities=[to_public(r) for r in records], cursor=next_cursor)
