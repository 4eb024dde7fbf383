"""What one run of a task came to, before it is committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..models import ErrorInfo

Kind = Literal["success", "failed", "continue", "cancelled"]


@dataclass
class Outcome:
    """``success`` (with ``result`` JSON text), ``failed`` (with ``error``; ``retryable`` says
    whether retries may apply), ``continue`` (definitions: ``payload`` is the merged input,
    ``wait`` seconds until the next iteration) or ``cancelled``. ``extra``: more columns to
    write with it (a definition's ``iterations``)."""

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
