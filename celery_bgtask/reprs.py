"""``safe_repr``: a caller's value as text for an error message, which never raises and stays short.

A bad argument must give a ``TaskValidationError``, even when its ``__repr__`` raises or
would fill a log with megabytes.
"""

from __future__ import annotations

#: The longest a value's text in a message may be.
MAX_REPR = 200


def safe_repr(value: object, limit: int = MAX_REPR) -> str:
    """``repr(value)``, cut to ``limit`` characters; the plain object form when its ``__repr__`` raises."""
    try:
        text = repr(value)
    except Exception:
        text = f"{object.__repr__(value)} (its repr raised)"
    return text if len(text) <= limit else text[: limit - 3] + "..."
