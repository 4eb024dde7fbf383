"""Retrying a store call through a short database outage.

Each store call is one transaction, so a retry never leaves a half-written state: either
the whole conditional update committed or none of it did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .errors import StoreUnavailableError

log = logging.getLogger(__name__)
R = TypeVar("R")

#: Waits between attempts: about 30 s in all before giving up.
BACKOFF = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def with_retries(what: str, fn: Callable[[], R], backoff: tuple[float, ...] = BACKOFF) -> R:
    for delay in (*backoff, None):
        try:
            return fn()
        except Exception as exc:
            if not _transient(exc):
                raise
            if delay is None:
                raise StoreUnavailableError(f"{what}: the database did not answer ({exc})") from exc
            log.warning("%s: database unavailable (%s); retrying in %.2fs", what, exc.__class__.__name__, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
