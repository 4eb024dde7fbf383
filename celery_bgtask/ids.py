"""Task ids: a bare 32-hex id inside, the URN ``background-task:celery:<id>`` outside."""

from __future__ import annotations

import re
import uuid

from .errors import NamespaceMismatchError, TaskValidationError
from .reprs import safe_repr

NAMESPACE = "background-task:celery"
_HEX32 = re.compile(r"[0-9a-f]{32}")
_URN_PREFIX = "urn:"
#: Only ASCII whitespace around an id is forgiven (a pasted id); ``str.strip()`` would also
#: take ``\x85``, ``\u3000`` and other Unicode spaces.
_ASCII_SPACE = " \t\r\n"
#: Longer than any URN of any namespace we would name in a message.
_MAX_ID_CHARS = 200


def new_id() -> str:
    return uuid.uuid4().hex


def is_bare_id(value: str) -> bool:
    """Whether ``value`` has the form of a bare record id (32 lowercase hex digits)."""
    return bool(_HEX32.fullmatch(value))


def to_urn(task_id: str) -> str:
    return f"{NAMESPACE}:{task_id}"


def parse_task_id(task_id: object) -> str:
    """Accept a URN of our namespace or a bare 32-hex id; return the bare (lowercase) id.

    Like any URN, the namespace and the hex digits are case-insensitive and an optional
    leading ``urn:`` is allowed; ASCII spaces, tabs and line ends around it are stripped,
    and nothing else is: any other character, ASCII or not, makes it malformed. Raises
    ``NamespaceMismatchError`` for a well-formed URN of another namespace and
    ``TaskValidationError`` for anything else that is not an id.
    """
    if not isinstance(task_id, str):
        raise TaskValidationError("task_id", f"must be a str, got {type(task_id).__name__}")
    if len(task_id) > _MAX_ID_CHARS:
        raise TaskValidationError("task_id", f"is {len(task_id)} characters long; an id is at most {_MAX_ID_CHARS}")
    value = task_id.strip(_ASCII_SPACE)
    if not value.isascii() or not value.isprintable():
        raise TaskValidationError(
            "task_id", f"must be 'background-task:celery:<32 hex>' or a bare 32-hex id, got {task_id!r}"
        )
    value = value.lower()
    if _HEX32.fullmatch(value):
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
    if not _HEX32.fullmatch(tail):
        raise TaskValidationError("task_id", f"id part must be 32 hex digits, got {safe_repr(tail)}")
    return tail
