"""``TaskSchedulerComponent``: scheduled tasks (TWIN ``ITaskSchedulerComponent``) kept in the database.

``add_task`` / ``remove_task`` write the schedule tables, so a web process changes what a
running beat fires with no restart. ``tick`` (``fire_due``) is one tick of the beat
(:class:`celery_bgtask.beat.Scheduler` calls it): it claims every due trigger with a
compare-and-set and commits a task record of type ``SCHEDULED_TYPE`` per firing won, then
publishes the records' wake-ups. A worker runs the callback from that record.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from . import validation as v
from .celery import runner_of
from .celery.publish import Wakeup
from .component import BackgroundTaskComponent
from .core.record import as_row
from .errors import BgTaskError
from .ids import to_urn
from .intake import new_record
from .models import ScheduledTaskInfo, ScheduledTaskTime, interval_ms
from .resilience import guarded
from .scheduling.callbacks import callback_ref
from .scheduling.entries import Entry
from .scheduling.firing import SCHEDULED_TYPE
from .scheduling.times import plan_times, trigger_after
from .store.schedules import DueTime, ScheduleStore
from .timeutil import now_ms

log = logging.getLogger(__name__)

#: Due times read per query; a tick repeats the query while whole batches come back.
BATCH = 200
#: A tick stops after this many batches (and asks beat to tick again at once).
MAX_BATCHES = 20
DEFAULT_BEAT_POLL = 1000


@dataclass(frozen=True, slots=True)
class Tick:
    """What one tick did: the firing records it committed, and the seconds until the
    earliest trigger left (0 when one is already due, None when nothing is scheduled)."""

    fired: list[str]
    seconds_to_next: float | None


def firing_id(due: DueTime) -> str:
    """The record id of one firing: the same firing always gets the same id.

    Exactly-once rests on the compare-and-set; the deterministic primary key is a second
    fence that makes a duplicate firing impossible to commit at all.
    """
    key = f"{due.schedule_id}\0{due.revision}\0{due.position}\0{due.next_trigger_time}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


#: Each app's scheduler component, kept beside the app (weakly), never on it.
_schedulers: weakref.WeakKeyDictionary[Celery, TaskSchedulerComponent] = weakref.WeakKeyDictionary()


def _installed_component(app: Celery) -> BackgroundTaskComponent | None:
    runner = runner_of(app)
    host = None if runner is None else runner.host
    return host if isinstance(host, BackgroundTaskComponent) else None


class TaskSchedulerComponent:
    """Scheduled tasks in the database, fired by ``celery beat -S bgtask``.

    It shares the app's :class:`BackgroundTaskComponent` (and so its database) when there
    is one, or creates one from ``database_url`` / ``engine`` / ``app.conf`` and
    ``settings`` (any ``BackgroundTaskComponent`` setting). ``retain_for`` is how long
    each firing's record is kept (default: the component's ``default_retain_for``);
    ``beat_poll_interval`` (ms, default 1000, or ``app.conf.bgtask_beat_poll_interval``)
    is the longest a beat sleeps, and so how soon it notices a change.
    """

    def __init__(
        self,
        app: Celery,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        component: BackgroundTaskComponent | None = None,
        retain_for: int | timedelta | None = None,
        beat_poll_interval: int | timedelta | None = None,
        **settings: Any,
    ) -> None:
        self.app = app
        # Every check first, so that a bad argument leaves the app as it was.
        self.retain_for = v.retain_for_ms("retain_for", retain_for)
        poll = beat_poll_interval if beat_poll_interval is not None else app.conf.get("bgtask_beat_poll_interval")
        self.beat_poll_interval: int = v.duration_ms(
            "beat_poll_interval", DEFAULT_BEAT_POLL if poll is None else poll, minimum=10
        ) or DEFAULT_BEAT_POLL
        self.background = self._background(app, database_url, engine, component, settings)
        self.store = ScheduleStore(self.background.engine)
        _schedulers[app] = self

    @staticmethod
    def _background(
        app: Celery,
        database_url: str | None,
        engine: Engine | None,
        component: BackgroundTaskComponent | None,
        settings: dict[str, Any],
    ) -> BackgroundTaskComponent:
        installed = _installed_component(app)
        if component is not None:
            if component.app is not app:
                raise BgTaskError("component: it belongs to another Celery app")
            installed = component
        if installed is None:
            return BackgroundTaskComponent(app, database_url, engine=engine, **settings)
        # One component (one database) per app: the scheduler's firings are its tasks.
        if engine is not None and engine is not installed.engine:
            raise BgTaskError("engine: this app's BackgroundTaskComponent uses another engine")
        if database_url is not None:
            wanted = make_url(database_url).render_as_string(hide_password=False)
            if wanted != installed.engine.url.render_as_string(hide_password=False):
                raise BgTaskError(f"database_url: this app's BackgroundTaskComponent uses {installed.engine.url!r}")
        if settings:
            raise BgTaskError(f"{', '.join(sorted(settings))}: set these on the app's BackgroundTaskComponent")
        return installed

    @property
    def engine(self) -> Engine:
        """The database of the schedules (the app's ``BackgroundTaskComponent``'s)."""
        return self.background.engine

    # -- TWIN ITaskSchedulerComponent ------------------------------------------------
    @guarded
    def add_task(self, task_id: str, times: Sequence[ScheduledTaskTime | dict[str, Any]], task_callback: Any) -> None:
        """Schedule ``task_callback`` at ``times`` under ``task_id``, replacing any schedule of that id.

        Raises ``TaskValidationError`` (and writes nothing) for a bad id, time or callback.
        """
        v.task_type("task_id", task_id)
        now = now_ms()
        planned = plan_times(times, now)
        ref = callback_ref(task_callback)
        self.background.ensure_ready()
        self.store.replace(task_id, ref, planned, now)
        log.info("scheduled task %s: %d time(s), callback %s", task_id, len(planned), ref)

    @guarded
    def remove_task(self, task_id: str) -> bool:
        """Delete the schedule; returns whether there was one.

        A firing committed but not yet run then fails with ``ScheduleNotFoundError`` and runs
        nothing: a worker reads the callback from the schedule, never from the firing."""
        v.task_type("task_id", task_id)
        self.background.ensure_ready()
        return self.store.delete(task_id)

    @guarded
    def tasks_info(self) -> ScheduledTaskInfo:
        """Every scheduled task with its times, each with its current ``next_trigger_time``."""
        self.background.ensure_ready()
        tasks: dict[str, list[ScheduledTaskTime]] = {}
        for row in self.store.all_times():
            tasks.setdefault(row.schedule_id, []).append(
                ScheduledTaskTime(
                    next_trigger_time=row.paused_trigger if row.paused else row.next_trigger_time,
                    interval_days=row.interval_days,
                    interval_hours=row.interval_hours,
                    interval_minutes=row.interval_minutes,
                    interval_seconds=row.interval_seconds,
                    cron=row.cron,
                    timezone=row.timezone,
                    # Outside TWIN's keys, and left out of its JSON when unset.
                    paused=True if row.paused else None,
                    last_fired_at=row.last_fired_at,
                    last_task_id=None if row.last_task_id is None else to_urn(row.last_task_id),
                    last_status=row.last_status,
                )
            )
        return ScheduledTaskInfo(tasks=tasks)

    @guarded
    def pause_task(self, task_id: str) -> bool:
        """Stop the schedule firing until ``resume_task``; returns whether it exists."""
        v.task_type("task_id", task_id)
        self.background.ensure_ready()
        return self.store.pause(task_id)

    @guarded
    def resume_task(self, task_id: str) -> bool:
        """Fire the schedule again, from the next time on its grid (the firings missed while
        paused are not made up); returns whether it exists."""
        v.task_type("task_id", task_id)
        self.background.ensure_ready()
        now = now_ms()

        def after_pause(row: Any) -> int | None:
            trigger: int | None = row.paused_trigger
            if trigger is None or trigger > now:
                return trigger  # a one-off that fired stays fired; a future trigger stays as it was
            every = interval_ms(row.interval_days, row.interval_hours, row.interval_minutes, row.interval_seconds)
            if row.cron is None and every is None:
                return trigger  # a one-off that came due while paused fires once now
            return trigger_after(trigger, every, row.cron, row.timezone, now)

        return self.store.resume(task_id, after_pause)

    # -- the beat's side -------------------------------------------------------------
    @guarded
    def sync_entries(self, entries: Sequence[Entry], lease: int, now: int | None = None) -> list[str]:
        """Keep ``beat_schedule`` entries in the database (beat calls this at start and then
        every so often); returns the names of stale entries it removed.

        Each entry is upserted by name: one whose stored hash is the same keeps its next
        trigger, so beats that start at once (or restart) agree and fire it once. An entry
        that no beat has synced for ``lease`` ms, and that is not among ``entries``, is
        removed: that is when an entry dropped from the configuration stops.
        """
        at = now_ms() if now is None else now
        self.background.ensure_ready()
        for e in entries:
            time = plan_times([e.time], at)[0]
            try:
                outcome = self.store.sync_entry(e.name, e.callback, time, e.call, e.digest, at)
            except IntegrityError:  # another beat inserted it at the same moment: same hash, keep it
                outcome = self.store.sync_entry(e.name, e.callback, time, e.call, e.digest, at)
            if outcome == "foreign":
                log.warning("beat_schedule entry %s: a schedule added with add_task has that name; "
                            "the entry is not run", e.name)
            elif outcome == "replaced":
                log.info("beat_schedule entry %s: stored (%s)", e.name, e.callback)
        removed = self.store.prune_entries([e.name for e in entries], at - lease)
        for name in removed:
            log.info("beat_schedule entry %s: removed (no running beat has had it for %d ms)", name, lease)
        return removed

    def _record(self, due: DueTime, now: int) -> dict[str, Any]:
        payload = {
            "scheduleId": due.schedule_id,
            "position": due.position,
            "triggerTime": due.next_trigger_time,
            # For people reading the record; the worker runs the callback of the schedule's row.
            "callback": due.callback,
        }
        record = new_record(self.background.settings, SCHEDULED_TYPE, payload, retry_count=None,
                            retry_interval=None, retain_for=self.retain_for, now=now)
        # No enqueued_at yet: published right after the commit; until then the worker sweeper may publish it.
        return {**as_row(record), "id": firing_id(due)}

    def fire_due(self, now: int | None = None) -> list[str]:
        """Fire every trigger due at ``now`` (default: the clock) that this process claims.

        Returns the URNs of the firing records this call committed. Safe to call from any
        number of processes at once: each firing is claimed by exactly one of them.
        """
        return self.tick(now).fired

    @guarded
    def tick(self, now: int | None = None) -> Tick:
        """``fire_due``, also saying how long until the earliest trigger left (for beat's sleep)."""
        at = now_ms() if now is None else now
        self.background.ensure_ready()
        fired: list[str] = []
        for _ in range(MAX_BATCHES):
            claimed = self.store.claim_due(
                at, BATCH, lambda d: trigger_after(d.next_trigger_time, d.interval_ms, d.cron, d.timezone, at),
                lambda d: self._record(d, at),
            )
            for d, row in claimed.won:
                log.info("scheduled task %s: firing time %d (trigger %d) as task %s",
                         d.schedule_id, d.position, d.next_trigger_time, row["id"])
            # One batch over one producer (one Redis pipeline). If it fails, the records keep
            # no enqueued_at, and the worker sweeper publishes them once the broker is back.
            stamp = now_ms()
            wakeups = [Wakeup(row["id"], 0, row["thread_id"], SCHEDULED_TYPE, stamp) for _, row in claimed.won]
            if wakeups and self.background.runner.publish_many(wakeups):
                self.background.store.set_enqueued([w.task_id for w in wakeups], stamp, hint=True)
            fired.extend(to_urn(row["id"]) for _, row in claimed.won)
            if claimed.read < BATCH:
                break
        following = claimed.next_trigger
        return Tick(fired, None if following is None else max(0.0, (following - now_ms()) / 1000))

    def close(self) -> None:
        """Drop the pooled connections (the schedules stay in the database)."""
        self.background.engine.dispose()


def scheduler_for(app: Celery) -> TaskSchedulerComponent:
    """The app's scheduler component, or a new one configured from ``app.conf``."""
    existing = scheduler_of(app)
    return existing if existing is not None else TaskSchedulerComponent(app)


def scheduler_of(app: Celery) -> TaskSchedulerComponent | None:
    """The app's newest scheduler component, if one was built."""
    return _schedulers.get(app)
