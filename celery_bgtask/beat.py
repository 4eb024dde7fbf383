"""A celery-beat scheduler whose schedule lives in the database.

Run it with ``celery -A proj.app beat -S bgtask`` (or ``-S celery_bgtask.beat:Scheduler``).
Each tick fires what is due through :meth:`TaskSchedulerComponent.fire_due`, then sleeps
until the next trigger, but never longer than ``beat_poll_interval`` (1 s by default), so
that schedules added or removed from another process are seen within that time.

Any number of beats can run for high availability: each firing is claimed by a
compare-and-set in the database, so it fires exactly once, and a beat that is killed
holds nothing the others wait for.

Entries of ``app.conf.beat_schedule`` are kept in the database under their names (see
``scheduling.entries``) and fire like any schedule: exactly once across all beats. Each
beat re-syncs its entries every ``ENTRY_REFRESH`` seconds; an entry that no running beat
has synced for ``ENTRY_LEASE`` seconds is removed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import beat

from .resilience import OutageLog, redacted
from .scheduler import TaskSchedulerComponent, scheduler_for
from .scheduling.entries import Entry, entries_of

log = logging.getLogger(__name__)

#: The longest a beat waits between tries while its database does not answer (seconds).
OUTAGE_CAP = 10.0
#: How often a beat re-syncs its beat_schedule entries (seconds).
ENTRY_REFRESH = 30.0
#: An entry no running beat has synced for this long (seconds) is removed.
ENTRY_LEASE = 120.0


class Scheduler(beat.Scheduler):
    """``celery.beat.Scheduler`` over the ``bgtask_schedules`` tables."""

    _component: TaskSchedulerComponent | None = None
    _outage: OutageLog | None = None
    _entries: list[Entry] | None = None
    _synced_at: float | None = None

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        # The database poll bounds every sleep, not the base class's 5 minutes. Set here,
        # not in setup_schedule, so that the lazy instance beat prints its banner from agrees.
        self.max_interval: float = min(float(self.max_interval), self.component.beat_poll_interval / 1000)

    def setup_schedule(self) -> None:
        # Checked here, so that a bad entry (a solar schedule, say) stops beat at start with its message.
        self._entries = entries_of(self.app.conf.beat_schedule, self.app.conf.timezone)
        self.install_default_entries(self.data)  # e.g. celery.backend_cleanup, as Celery's own scheduler does
        if self._entries:
            log.info("beat: %d beat_schedule entries (%s) kept in the database, each fired once across all beats",
                     len(self._entries), ", ".join(e.name for e in self._entries))

    def _sync(self, comp: TaskSchedulerComponent) -> None:
        """Sync the beat_schedule entries when they are due for it (at start, then every ENTRY_REFRESH)."""
        entries = self._entries if self._entries is not None else []
        clock = time.monotonic()
        if self._synced_at is None or clock - self._synced_at >= ENTRY_REFRESH:
            comp.sync_entries(entries, int(ENTRY_LEASE * 1000))
            self._synced_at = clock

    @property
    def component(self) -> TaskSchedulerComponent:
        if self._component is None:
            self._component = scheduler_for(self.app)
        return self._component

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Fire what is due; return how long beat may sleep. A failure is logged (one line, with
        backoff, a traceback at most once a minute), never raised."""
        comp = self.component
        poll = comp.beat_poll_interval / 1000
        if self._outage is None:
            self._outage = OutageLog(log, f"beat on {redacted(comp.background.engine)}", base=poll, cap=OUTAGE_CAP)
        try:
            self._sync(comp)
            wait = comp.tick().seconds_to_next
            delay = poll if wait is None else min(wait, poll)
            self._outage.succeeded()
        except Exception as exc:
            delay = self._outage.failed(exc)
        if self.data:
            delay = min(delay, float(super().tick(*args, **kwargs)))
        return delay

    @property
    def info(self) -> str:
        url = redacted(self.component.background.engine)
        return f"    . schedules -> {url} (polled every {self.component.beat_poll_interval} ms)"
