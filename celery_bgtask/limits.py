"""Upper bounds on caller-supplied numbers, text and JSON, so that nothing accepted can
overflow a column, a ``datetime`` or the JSON reader later (issue 14).

Each bound fits its column on SQLite, PostgreSQL and MariaDB (32-bit ``INTEGER``
columns are the tightest) and is far beyond any sane use.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import TaskValidationError
from .reprs import safe_repr

#: A day, a year (365.25 days) and the longest duration accepted anywhere: 100 years.
DAY_MS = 86_400_000
YEAR_MS = 31_557_600_000
MAX_DURATION_MS = 100 * YEAR_MS
MAX_DURATION_SECONDS = MAX_DURATION_MS // 1000
#: ``retry_interval`` is a 32-bit column: 24 days (2,073,600,000 ms) fits under 2**31 - 1.
MAX_RETRY_INTERVAL_MS = 24 * DAY_MS
#: ``retry_count``: retries after the first failure.
MAX_RETRY_COUNT = 10_000
#: ``max_iterations`` of a definition (the ``iterations`` column is 32-bit).
MAX_ITERATIONS = 1_000_000
#: ``HandlerOptions.max_worker_count``.
MAX_WORKER_COUNT = 10_000
#: The last millisecond a ``datetime`` can hold: 9999-12-31T23:59:59.999Z.
MAX_INSTANT_MS = 253_402_300_799_999
#: Levels of nested lists and dicts in a payload, input, result or patch.
MAX_DEPTH = 100
#: Characters of an ``abort`` message.
MAX_MESSAGE_CHARS = 10_000


def show_int(value: int) -> str:
    """An int for a message; a huge one by its size, since ``str()`` refuses over 4300 digits.

    A subclass goes through ``safe_repr``: its ``__str__`` is its ``__repr__``, which may raise.
    """
    if type(value) is not int:
        return safe_repr(value)
    return str(value) if abs(value) < 10**30 else f"an int of {value.bit_length()} bits"


def text_problem(value: str) -> str | None:
    """What is wrong with ``value`` as stored text: a NUL (PostgreSQL cannot store it, in a
    column or in ``jsonb``) or a lone surrogate (not encodable as UTF-8); None when fine."""
    if "\x00" in value:
        return "must not contain a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must not contain a lone surrogate (U+{ord(value[exc.start]):04X} at index {exc.start})"
    return None


def clean_text(field: str, value: str) -> str:
    """``value`` when it is fine as stored text (see ``text_problem``), else ``TaskValidationError``."""
    problem = text_problem(value)
    if problem is not None:
        raise TaskValidationError(field, problem)
    return value


def clean_name(field: str, value: str) -> str:
    """A stored name (task type, definition or schedule id, queue): clean text that does not end
    in a space, which MySQL and MariaDB ignore when comparing ("a " would be the name "a")."""
    if value.endswith(" "):
        raise TaskValidationError(field, "must not end with a space")
    return clean_text(field, value)


def seconds(field: str, value: object, *, minimum: float = 0) -> float | None:
    """A finite number of seconds (int, float or ``timedelta``) from ``minimum`` to 100 years."""
    from datetime import timedelta

    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        got = f"{safe_repr(value)} ({type(value).__name__})"
        raise TaskValidationError(field, f"must be a number of seconds or a timedelta, got {got}")
    if isinstance(value, float) and not math.isfinite(value):
        raise TaskValidationError(field, f"must be a finite number of seconds, got {safe_repr(value)}")
    if value < minimum:
        raise TaskValidationError(field, f"must be at least {minimum} seconds, got {safe_repr(value)}")
    if value > MAX_DURATION_SECONDS:
        shown = show_int(value) if isinstance(value, int) else repr(value)
        raise TaskValidationError(field, f"must be at most {MAX_DURATION_SECONDS} seconds (100 years), got {shown}")
    return float(value)


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings (keys too) replaced by U+FFFD: for text
    we record rather than refuse, such as an exception message made with ``surrogateescape``."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_surrogates(v) for v in value]
    return value


#: Where a value sits in a document, spelled out only for a message: (parent, key or index) links.
_Path = tuple[Any, str | int] | None


def _where(path: _Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, part = path
        parts.append(f"[{part}]" if isinstance(part, int) else f"[{part[:40]!r}]")
    parts.reverse()
    return f" at {''.join(parts[:10])}{'...' if len(parts) > 10 else ''}" if parts else ""


def check_json(field: str, value: Any) -> None:
    """Refuse what would store badly or fail to read back: nesting over ``MAX_DEPTH``, keys
    that are not str (``{1: "a", "1": "b"}`` would become duplicate keys), NUL and lone
    surrogates in keys or strings. Other types are left for ``json.dumps`` to judge."""
    stack: list[tuple[Any, int, _Path]] = [(value, 0, None)]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                raise TaskValidationError(field, f"{problem}{_where(path)}")
            continue
        if not isinstance(item, (dict, list, tuple)):
            continue
        if depth >= MAX_DEPTH:
            raise TaskValidationError(field, f"is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise TaskValidationError(
                        field, f"keys must be str, got a key of type {type(key).__name__}{_where(path)}"
                    )
                problem = text_problem(key)
                if problem is not None:
                    raise TaskValidationError(field, f"{problem} in a key{_where(path)}")
                stack.append((child, depth + 1, (path, key)))
        else:
            stack.extend((child, depth + 1, (path, index)) for index, child in enumerate(item))
