"""``ScheduleStore``: the scheduled tasks and their trigger times, as SQLAlchemy Core.

A firing is claimed with a compare-and-set on the time's ``next_trigger_time`` (and its
``revision``, fresh per ``add_task``), in the same transaction that inserts the firing's
task record. However many beats tick at once, exactly one of them moves a given trigger
on, and the record it commits is what a worker then runs. No lock outlives a tick's
transaction, so a beat that dies loses nothing and blocks nobody.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, delete, func, insert, select, true, update

from ..errors import BgTaskError
from ..models import ScheduledTaskTime, interval_ms
from .schema import schedule_times, schedules, tasks

t = schedule_times.c
s = schedules.c
#: ``schedules.origin`` of a schedule kept from ``app.conf.beat_schedule``.
ORIGIN_BEAT = "beat_schedule"


class ClaimConflict(BgTaskError):
    """A locked due time changed under its claim; the tick's transaction was rolled back."""


@dataclass(frozen=True, slots=True)
class DueTime:
    """A trigger time that is due, as read by a tick."""

    schedule_id: str
    position: int
    revision: str
    next_trigger_time: int
    interval_ms: int | None
    callback: str
    cron: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """What one claim transaction did."""

    read: int
    won: list[tuple[DueTime, Mapping[str, Any]]]
    next_trigger: int | None


class ScheduleStore:
    """Schedules in one database. Thread-safe; one per engine is enough."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(
        self, schedule_id: str, callback: str, planned: Sequence[ScheduledTaskTime], now: int,
        entry: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the schedule, or replace its callback and every one of its times.

        ``entry`` holds the ``call``, ``origin``, ``entry_hash`` and ``seen_at`` of a
        ``beat_schedule`` entry (None for ``add_task``)."""
        with self.engine.begin() as conn:
            self._replace(conn, schedule_id, callback, planned, now, entry or {})

    @staticmethod
    def _replace(
        conn: Connection, schedule_id: str, callback: str, planned: Sequence[ScheduledTaskTime], now: int,
        entry: Mapping[str, Any],
    ) -> None:
        revision = uuid.uuid4().hex
        created = conn.execute(select(s.date_created).where(s.id == schedule_id)).scalar()
        conn.execute(delete(schedule_times).where(t.schedule_id == schedule_id))
        conn.execute(delete(schedules).where(s.id == schedule_id))
        conn.execute(
            insert(schedules),
            [{"id": schedule_id, "callback": callback, "date_created": created or now, "date_modified": now,
              "call": None, "origin": None, "entry_hash": None, "seen_at": None, **entry}],
        )
        conn.execute(
            insert(schedule_times),
            [
                {
                    "schedule_id": schedule_id,
                    "position": position,
                    "revision": revision,
                    "next_trigger_time": p.next_trigger_time,
                    "interval_days": p.interval_days,
                    "interval_hours": p.interval_hours,
                    "interval_minutes": p.interval_minutes,
                    "interval_seconds": p.interval_seconds,
                    "cron": p.cron,
                    "timezone": p.timezone,
                }
                for position, p in enumerate(planned)
            ],
        )

    def delete(self, schedule_id: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(delete(schedule_times).where(t.schedule_id == schedule_id))
            return conn.execute(delete(schedules).where(s.id == schedule_id)).rowcount == 1

    def callback_of(self, schedule_id: str) -> tuple[str, str | None] | None:
        """The schedule's callback as stored, with its call's JSON (a ``beat_schedule``
        entry's args, kwargs and options; None for ``add_task``); None when there is no such schedule."""
        with self.engine.connect() as conn:
            row = conn.execute(select(s.callback, s.call).where(s.id == schedule_id)).first()
        return None if row is None else (str(row.callback), row.call)

    def sync_entry(self, name: str, callback: str, time: ScheduledTaskTime, call: str, digest: str,
                   now: int) -> str:
        """Upsert one ``beat_schedule`` entry by name: ``"kept"`` (same hash: only ``seen_at``
        moves), ``"replaced"``, or ``"foreign"`` (an ``add_task`` schedule has the name; left alone)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(s.origin, s.entry_hash).where(s.id == name).with_for_update()).first()
            if row is not None and row.origin != ORIGIN_BEAT:
                return "foreign"
            if row is not None and row.entry_hash == digest:
                conn.execute(update(schedules).where(s.id == name).values(seen_at=now))
                return "kept"
            entry = {"call": call, "origin": ORIGIN_BEAT, "entry_hash": digest, "seen_at": now}
            self._replace(conn, name, callback, [time], now, entry)
            return "replaced"

    def prune_entries(self, keep: Sequence[str], older_than: int) -> list[str]:
        """Remove the ``beat_schedule`` entries not in ``keep`` that no beat has seen since ``older_than``."""
        with self.engine.begin() as conn:
            stale = [str(v) for v in conn.execute(
                select(s.id).where(s.origin == ORIGIN_BEAT, s.seen_at < older_than, s.id.not_in(keep))
            ).scalars()]
            if stale:
                conn.execute(delete(schedule_times).where(t.schedule_id.in_(stale)))
                conn.execute(delete(schedules).where(s.id.in_(stale)))
        return stale

    def all_times(self) -> list[Row[Any]]:
        """Every time of every schedule, by schedule id and position, with the status of its
        last firing's record (None once that record is gone) (for ``tasks_info``)."""
        stmt = (
            select(t.schedule_id, t.next_trigger_time, t.interval_days, t.interval_hours, t.interval_minutes,
                   t.interval_seconds, t.cron, t.timezone, t.paused, t.paused_trigger, t.last_fired_at,
                   t.last_task_id, tasks.c.status.label("last_status"))
            .outerjoin(tasks, tasks.c.id == t.last_task_id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(stmt.order_by(t.schedule_id, t.position)))

    def pause(self, schedule_id: str) -> bool:
        """Park each time's trigger in ``paused_trigger`` (a tick never reads it); False if no schedule."""
        with self.engine.begin() as conn:
            conn.execute(
                update(schedule_times)
                .where(t.schedule_id == schedule_id, t.paused.is_(None))
                # In this order: MySQL assigns left to right, each seeing the ones before.
                .ordered_values((t.paused_trigger, t.next_trigger_time), (t.paused, True), (t.next_trigger_time, None))
            )
            return conn.execute(select(s.id).where(s.id == schedule_id)).first() is not None

    def resume(self, schedule_id: str, following: Callable[[Any], int | None]) -> bool:
        """Put each paused time back with the trigger ``following(row)`` gives; False if no schedule."""
        with self.engine.begin() as conn:
            rows = list(conn.execute(
                select(t.position, t.paused_trigger, t.interval_days, t.interval_hours, t.interval_minutes,
                       t.interval_seconds, t.cron, t.timezone)
                .where(t.schedule_id == schedule_id, t.paused == true())
                .with_for_update()
            ))
            for row in rows:
                conn.execute(
                    update(schedule_times)
                    .where(t.schedule_id == schedule_id, t.position == row.position, t.paused == true())
                    .values(paused=None, paused_trigger=None, next_trigger_time=following(row))
                )
            return conn.execute(select(s.id).where(s.id == schedule_id)).first() is not None

    @staticmethod
    def _earliest(conn: Connection) -> int | None:
        """The earliest pending trigger of any schedule (the index's first entry)."""
        value = conn.execute(select(func.min(t.next_trigger_time))).scalar()
        return None if value is None else int(value)

    def claim_due(
        self,
        now: int,
        limit: int,
        following: Callable[[DueTime], int | None],
        record: Callable[[DueTime], Mapping[str, Any]],
        now_fired: int | None = None,
    ) -> Claimed:
        """Claim up to ``limit`` times due at ``now`` and insert a task record for each claim won.

        Returns how many due times were read, the claims won and the earliest trigger
        left afterwards (read in the same transaction, saving the tick a round trip).
        One transaction: a claim and its record commit together or not at all. The read is a range scan of the
        ``next_trigger_time`` index. Each claim is a compare-and-set UPDATE of the time's
        ``next_trigger_time`` (with its ``revision``) to ``following(time)``, which also
        notes the firing (``now_fired``, default ``now``, and the record's id) on the time.

        On PostgreSQL and MySQL/MariaDB the read also takes the due rows ``FOR UPDATE SKIP
        LOCKED``: beats ticking at once divide the due times between them instead of
        waiting on (or deadlocking with) each other, and every compare-and-set on a row we
        hold succeeds, so they go out as one batch (pipelined by psycopg). Such a row lock
        lasts only for this transaction: a beat that dies drops it with its connection.
        SQLite serialises writers; there each compare-and-set is checked on its own.
        """
        dialect = self.engine.dialect.name
        locking = dialect in ("postgresql", "mysql", "mariadb")
        stmt = (
            select(t.schedule_id, t.position, t.revision, t.next_trigger_time,
                   t.interval_days, t.interval_hours, t.interval_minutes, t.interval_seconds,
                   t.cron, t.timezone, s.callback)
            .join(schedules, s.id == t.schedule_id)
            .where(t.next_trigger_time <= now)
            .order_by(t.next_trigger_time)
            .limit(limit)
        )
        if locking:
            # MariaDB has no FOR UPDATE OF; there the schedule rows are locked as well.
            stmt = stmt.with_for_update(skip_locked=True, of=schedule_times if dialect == "postgresql" else None)
        with self.engine.begin() as conn:
            due = [
                DueTime(r.schedule_id, r.position, r.revision, r.next_trigger_time,
                        interval_ms(r.interval_days, r.interval_hours, r.interval_minutes, r.interval_seconds),
                        r.callback, r.cron, r.timezone)
                for r in conn.execute(stmt)
            ]
            if not due:
                return Claimed(0, [], self._earliest(conn))
            rows = [record(d) for d in due]
            fired_at = now if now_fired is None else now_fired
            params = [
                {"b_id": d.schedule_id, "b_position": d.position, "b_revision": d.revision,
                 "b_trigger": d.next_trigger_time, "b_following": following(d), "b_at": fired_at,
                 "b_task": row["id"]}
                for d, row in zip(due, rows, strict=True)
            ]
            if locking:
                changed = conn.execute(_CAS, params).rowcount
                if changed != len(params):
                    # Cannot happen while we hold the rows: roll back rather than guess which won.
                    raise ClaimConflict(f"{changed} of {len(params)} locked due times changed under the claim")
                won = list(zip(due, rows, strict=True))
            else:
                won = [(d, row) for d, row, p in zip(due, rows, params, strict=True)
                       if conn.execute(_CAS, p).rowcount == 1]
            if won:
                conn.execute(insert(tasks), [dict(row) for _, row in won])
            return Claimed(len(due), won, self._earliest(conn))


#: The claim of one firing: move the trigger on only if it is still the one that was read.
_CAS = (
    update(schedule_times)
    .where(
        t.schedule_id == bindparam("b_id"),
        t.position == bindparam("b_position"),
        t.revision == bindparam("b_revision"),
        t.next_trigger_time == bindparam("b_trigger"),
    )
    .values(next_trigger_time=bindparam("b_following"), last_fired_at=bindparam("b_at"),
            last_task_id=bindparam("b_task"))
)
