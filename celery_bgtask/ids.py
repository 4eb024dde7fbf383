"""Task ids: a bare 32-hex id inside, the URN ``background-task:celery:<id>`` outside."""

from __future__ import annotations

import re
import uuid

from .errors import NamespaceMismatchError, TaskValidationError
from .reprs import safe_repr

NAMESPACE = "background-task:celery"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_URN_PREFIX = "urn:"


def new_id() -> str:
    return uuid.uuid4().hex


def is_bare_id(value: str) -> bool:
    """Whether ``value`` has the form of a bare record id (32 lowercase hex digits)."""
    return bool(_HEX32.match(value))


def to_urn(task_id: str) -> str:
    return f"{NAMESPACE}:{task_id}"


def parse_task_id(task_id: object) -> str:
    """Accept a URN of our namespace or a bare 32-hex id; return the bare (lowercase) id.

    Like any URN, the namespace and the hex digits are case-insensitive and an optional
    leading ``urn:`` is allowed. Raises ``NamespaceMismatchError`` for a well-formed URN
    of another namespace and ``TaskValidationError`` for anything else that is not an id.
    """
    if not isinstance(task_id, str):
        raise TaskValidationError("task_id", f"must be a str, got {type(task_id).__name__}")
    value = task_id.strip().lower()
    if _HEX32.match(value):
        return value
    if value.startswith(_URN_PREFIX):
        value = value[len(_URN_PREFIX):]
    head, sep, tail = value.rpartition(":")
    if not sep or not head:
        raise TaskValidationError(
            "task_id", f"must be 'background-task:celery:<32 hex>' or a bare 32-hex id, got {safe_repr(task_id)}"
        )
    if head != NAMESPACE:
        # Another namespace is a mismatch only when the URN itself is well formed.
        if tail and head.count(":") >= 1 and all(head.split(":")):
            raise NamespaceMismatchError(task_id, head)
        raise TaskValidationError("task_id", f"malformed URN {safe_repr(task_id)}")
    if not _HEX32.match(tail):
        raise TaskValidationError("task_id", f"id part must be 32 hex digits, got {safe_repr(tail)}")
    return tail
