"""``ctx.runtime``: what a running definition may ask about its own run.

``is_aborted()`` reads the record's ``abort_requested`` flag, which ``bg.abort()`` sets
from any process; reads are spaced at least ``poll`` seconds apart so a loop that asks on
every item does not hammer the database. ``is_close_to_timeout()`` measures the time
since this iteration started against the soft time limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: The default margin of ``is_close_to_timeout``: 10% of the limit, but at most this many seconds.
MAX_DEFAULT_MARGIN = 10.0


def default_margin(limit: float) -> float:
    return min(limit * 0.1, MAX_DEFAULT_MARGIN)


class TaskRuntime:
    """The run's view of its abort flag and its time budget."""

    def __init__(
        self,
        read_abort_flag: Callable[[], bool],
        soft_time_limit: float | None,
        *,
        started: float | None = None,
        poll: float = 0.1,
    ) -> None:
        self._read = read_abort_flag
        self.soft_time_limit = soft_time_limit
        self.started = time.monotonic() if started is None else started
        self._poll = poll
        self._aborted = False
        self._last_read = float("-inf")

    def is_aborted(self) -> bool:
        """True once ``abort()`` was called for this task (in any process)."""
        if self._aborted:
            return True
        now = time.monotonic()
        if now - self._last_read >= self._poll:
            self._last_read = now
            try:
                self._aborted = bool(self._read())
            except Exception:  # a database hiccup must not fail the run; ask again next time
                log.warning("could not read the abort flag; assuming not aborted for now", exc_info=True)
        return self._aborted

    def remaining_seconds(self) -> float | None:
        """Seconds left of this iteration's soft time limit (negative once past it); None without a limit."""
        if self.soft_time_limit is None:
            return None
        return self.soft_time_limit - (time.monotonic() - self.started)

    def is_close_to_timeout(self, seconds: float | None = None) -> bool:
        """True when at most ``seconds`` remain of the soft time limit.

        The default margin is 10% of the limit, at most 10 s. Without a soft time limit
        this is always False.
        """
        remaining = self.remaining_seconds()
        if remaining is None or self.soft_time_limit is None:
            return False
        margin = default_margin(self.soft_time_limit) if seconds is None else seconds
        return remaining <= margin
