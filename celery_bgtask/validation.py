"""Strict checks of caller-supplied options. Strings and bools are rejected, never coerced."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from .errors import TaskValidationError
from .limits import MAX_DURATION_MS, MAX_RETRY_COUNT, MAX_RETRY_INTERVAL_MS, check_json, clean_name, show_int
from .reprs import safe_repr

MAX_TYPE_LENGTH = 200
V = TypeVar("V")
#: Task types under this prefix belong to the package (its scheduled firings); callers may not use them.
RESERVED_PREFIX = "celery_bgtask."


def _describe(value: object) -> str:
    return f"{safe_repr(value)} ({type(value).__name__})"


def strict_int(field: str, value: object, *, minimum: int, maximum: int | None = None,
               allow_none: bool = True) -> int | None:
    """An int from ``minimum`` to ``maximum`` (bools are not ints here), or None when allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TaskValidationError(field, f"must be an int >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise TaskValidationError(field, f"must be an int >= {minimum}, got {show_int(value)}")
    if maximum is not None and value > maximum:
        raise TaskValidationError(field, f"must be at most {maximum}, got {show_int(value)}")
    return value


def duration_ms(field: str, value: object, *, minimum: int = 1, maximum: int = MAX_DURATION_MS) -> int | None:
    """An int of milliseconds or a ``timedelta``, from ``minimum`` to ``maximum`` ms (default 100 years)."""
    if isinstance(value, timedelta):
        ms = value // timedelta(milliseconds=1)
        if ms < minimum:
            raise TaskValidationError(field, f"must be at least {minimum} ms, got {safe_repr(value)}")
        if ms > maximum:
            raise TaskValidationError(field, f"must be at most {maximum} ms, got {safe_repr(value)}")
        return ms
    return strict_int(field, value, minimum=minimum, maximum=maximum)


def retain_for_ms(field: str, value: object) -> int | None:
    """``retain_for``: None (default), -1 (forever), 0 (remove at once) or N ms (int or timedelta) up to 100 years."""
    if isinstance(value, timedelta):
        return duration_ms(field, value, minimum=0)
    return strict_int(field, value, minimum=-1, maximum=MAX_DURATION_MS)


def retry_count(field: str, value: object) -> int | None:
    """Retries after the first failure, 0 to ``MAX_RETRY_COUNT``; 0 means none, the same as None."""
    return strict_int(field, value, minimum=0, maximum=MAX_RETRY_COUNT) or None


def retry_interval(field: str, value: object) -> int | None:
    """ms between attempts (int or ``timedelta``), 1 ms to 24 days: the column is a 32-bit int."""
    return duration_ms(field, value, maximum=MAX_RETRY_INTERVAL_MS)


def task_type(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise TaskValidationError(field, f"must be a non-empty str, got {_describe(value)}")
    if not value.strip():
        raise TaskValidationError(field, "must be a non-empty str")
    if len(value) > MAX_TYPE_LENGTH:
        raise TaskValidationError(field, f"must be at most {MAX_TYPE_LENGTH} characters, got {len(value)}")
    return clean_name(field, value)


def user_task_type(field: str, value: object) -> str:
    """``task_type``, and not one of the package's own (``not_reserved``)."""
    return not_reserved(field, task_type(field, value))


def not_reserved(field: str, value: V) -> V:
    """Refuse the ``RESERVED_PREFIX`` types: their handlers trust their payload (a scheduled firing's)."""
    if isinstance(value, str) and value.startswith(RESERVED_PREFIX):
        raise TaskValidationError(field, f"the prefix {RESERVED_PREFIX!r} is reserved for celery_bgtask's own task "
                                         f"types, got {safe_repr(value)}")
    return value


def to_jsonable(value: Any) -> Any:
    """Pydantic models become their JSON-mode dump; everything else is left for ``json``."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


def json_text(field: str, value: Any, *, max_bytes: int | None) -> str | None:
    """Serialise ``value`` to JSON text (None stays None), enforcing the size limit.

    NaN and infinities are rejected: they are not JSON and other readers choke on them; so is
    what ``limits.check_json`` refuses (deep nesting, non-str keys, NUL, lone surrogates).
    """
    if value is None:
        return None
    try:
        plain = to_jsonable(value)
        check_json(field, plain)
        text = json.dumps(plain, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except TaskValidationError:
        raise
    except (TypeError, ValueError, PydanticSerializationError) as exc:
        raise TaskValidationError(field, f"must be JSON-serialisable: {exc}") from None
    if max_bytes is not None and len(text.encode()) > max_bytes:
        raise TaskValidationError(field, f"JSON is {len(text.encode())} bytes, more than the maximum {max_bytes}")
    return text
