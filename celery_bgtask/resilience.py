"""Living through a database outage: retrying a store call, naming the database in the error,
and logging a loop's failures without flooding the log.

Each store call is one transaction, so a retry never leaves a half-written state: either
the whole conditional update committed or none of it did.
"""

from __future__ import annotations

import functools
import logging
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .errors import StoreUnavailableError

log = logging.getLogger(__name__)
R = TypeVar("R")
P = ParamSpec("P")

#: Waits between attempts: about 30 s in all before giving up.
BACKOFF = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable for now (worth trying again later)."""
    if isinstance(exc, (OperationalError, InterfaceError, StoreUnavailableError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def with_retries(what: str, fn: Callable[[], R], backoff: tuple[float, ...] = BACKOFF) -> R:
    for delay in (*backoff, None):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if delay is None:
                raise StoreUnavailableError(f"{what}: the database did not answer ({exc})") from exc
            log.warning("%s: database unavailable (%s); retrying in %.2fs", what, exc.__class__.__name__, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def redacted(engine: Engine) -> str:
    """The engine's URL for a log line or an error message: the password hidden."""
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def unavailable_as_error(engine: Engine) -> Iterator[None]:
    """Raise a database that does not answer as ``StoreUnavailableError`` naming it (no password),
    with SQLAlchemy's error as the cause."""
    try:
        yield
    except StoreUnavailableError:
        raise
    except Exception as exc:
        if not is_transient(exc):
            raise
        reason = _first_line(exc) or type(exc).__name__
        raise StoreUnavailableError(f"the database {redacted(engine)} is not answering: {reason}") from exc


S = TypeVar("S")


def guarded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A public method of a component (an object with an ``engine``): a database that does not
    answer raises ``StoreUnavailableError`` (see ``unavailable_as_error``)."""

    def call(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        with unavailable_as_error(typing.cast(Engine, getattr(self, "engine"))):  # noqa: B009
            return method(self, *args, **kwargs)

    return functools.update_wrapper(call, method)  # type: ignore[return-value]


class OutageLog:
    """How a loop that retries forever (the sweeper, the beat) reports a database outage: one
    line per failure, a traceback at most once every ``traceback_every`` seconds, a line when it
    is over, and the wait before the next try, doubling from ``base`` up to ``cap`` seconds."""

    def __init__(self, logger: logging.Logger, what: str, base: float, cap: float = 30.0,
                 traceback_every: float = 60.0) -> None:
        self.logger = logger
        self.what = what
        self.base = base
        self.cap = max(cap, base)
        self.traceback_every = traceback_every
        self.failures = 0
        self._last_traceback = float("-inf")

    def failed(self, exc: BaseException) -> float:
        """Log this failure; return how long to wait before trying again."""
        self.failures += 1
        delay: float = min(self.base * 2.0 ** (self.failures - 1), self.cap)
        now = time.monotonic()
        with_traceback = now - self._last_traceback >= self.traceback_every
        if with_traceback:
            self._last_traceback = now
        kind = "the database is unavailable" if is_transient(exc) else "failed"
        self.logger.error("%s: %s (%s: %s); trying again in %.1fs (failure %d)", self.what, kind,
                          type(exc).__name__, _first_line(exc), delay, self.failures,
                          exc_info=exc if with_traceback else None)
        return delay

    def succeeded(self) -> None:
        if self.failures:
            self.logger.warning("%s: working again after %d failed attempts", self.what, self.failures)
        self.failures = 0


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    return text.splitlines()[0] if text else ""
