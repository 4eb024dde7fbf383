"""A celery-beat scheduler whose schedule lives in the database.

Run it with ``celery -A proj.app beat -S bgtask`` (or ``-S celery_bgtask.beat:Scheduler``).
Each tick fires what is due through :meth:`TaskSchedulerComponent.fire_due`, then sleeps
until the next trigger, but never longer than ``beat_poll_interval`` (1 s by default), so
that schedules added or removed from another process are seen within that time.

Any number of beats can run for high availability: each firing is claimed by a
compare-and-set in the database, so it fires exactly once, and a beat that is killed
holds nothing the others wait for.

Entries of ``app.conf.beat_schedule`` still run, the way Celery's own scheduler runs them:
from memory, in each beat process (so once per beat). Use ``add_task`` for schedules that
must fire exactly once across several beats.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import beat

from .resilience import OutageLog, redacted
from .scheduler import TaskSchedulerComponent, scheduler_for

log = logging.getLogger(__name__)

#: The longest a beat waits between tries while its database does not answer (seconds).
OUTAGE_CAP = 10.0


class Scheduler(beat.Scheduler):
    """``celery.beat.Scheduler`` over the ``bgtask_schedules`` tables."""

    _component: TaskSchedulerComponent | None = None
    _outage: OutageLog | None = None

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(app, *args, **kwargs)
        # The database poll bounds every sleep, not the base class's 5 minutes. Set here,
        # not in setup_schedule, so that the lazy instance beat prints its banner from agrees.
        self.max_interval: float = min(float(self.max_interval), self.component.beat_poll_interval / 1000)

    def setup_schedule(self) -> None:
        static = dict(self.app.conf.beat_schedule or {})
        self.merge_inplace(static)
        self.install_default_entries(self.data)  # e.g. celery.backend_cleanup, as Celery's own scheduler does
        if static:
            log.warning(
                "beat: %d entries from beat_schedule (%s) run from memory in this beat process, as with "
                "Celery's default scheduler; only schedules added with TaskSchedulerComponent.add_task "
                "fire exactly once across several beats",
                len(static), ", ".join(sorted(static)),
            )

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
