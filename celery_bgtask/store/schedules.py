"""``ScheduleStore``: the scheduled tasks and their trigger times, as SQLAlchemy Core.

A firing is claimed with a compare-and-set on the time's ``next_trigger_time`` (and its
``revision``, fresh per ``add_task``), in the same transaction that inserts the firing's
task record. However many beats tick at once, exactly one of them moves a given trigger
on, and the record it commits is what a worker then runs. No lock is held between ticks,
so a beat that dies loses nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, delete, func, insert, select, update

from ..schedule_times import PlannedTime, interval_ms
from .schema import schedule_times, schedules, tasks

t = schedule_times.c
s = schedules.c


@dataclass(frozen=True, slots=True)
class DueTime:
    """A trigger time that is due, as read by a tick."""

    schedule_id: str
    position: int
    revision: str
    next_trigger_time: int
    interval_ms: int | None
    callback: str


class ScheduleStore:
    """Schedules in one database. Thread-safe; one per engine is enough."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace(self, schedule_id: str, callback: str, planned: Sequence[PlannedTime], now: int) -> None:
        """Create the schedule, or replace its callback and every one of its times."""
        revision = uuid.uuid4().hex
        with self.engine.begin() as conn:
            created = conn.execute(select(s.date_created).where(s.id == schedule_id)).scalar()
            conn.execute(delete(schedule_times).where(t.schedule_id == schedule_id))
            conn.execute(delete(schedules).where(s.id == schedule_id))
            conn.execute(
                insert(schedules),
                [{"id": schedule_id, "callback": callback, "date_created": created or now, "date_modified": now}],
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
                    }
                    for position, p in enumerate(planned)
                ],
            )

    def delete(self, schedule_id: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(delete(schedule_times).where(t.schedule_id == schedule_id))
            return conn.execute(delete(schedules).where(s.id == schedule_id)).rowcount == 1

    def all_times(self) -> list[Row[Any]]:
        """Every time of every schedule, by schedule id and position (for ``tasks_info``)."""
        stmt = select(t.schedule_id, t.next_trigger_time, t.interval_days, t.interval_hours, t.interval_minutes)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt.order_by(t.schedule_id, t.position)))

    def due(self, now: int, limit: int) -> list[DueTime]:
        """The times due at ``now``, oldest first: an index range scan on ``next_trigger_time``."""
        stmt = (
            select(t.schedule_id, t.position, t.revision, t.next_trigger_time,
                   t.interval_days, t.interval_hours, t.interval_minutes, s.callback)
            .join(schedules, s.id == t.schedule_id)
            .where(t.next_trigger_time <= now)
            .order_by(t.next_trigger_time)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            DueTime(r.schedule_id, r.position, r.revision, r.next_trigger_time,
                    interval_ms(r.interval_days, r.interval_hours, r.interval_minutes), r.callback)
            for r in rows
        ]

    def next_trigger(self) -> int | None:
        """The earliest pending trigger of any schedule (the index's first entry)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.min(t.next_trigger_time))).scalar()
        return None if value is None else int(value)

    def fire(
        self,
        claims: Sequence[tuple[DueTime, int | None]],
        record: Callable[[DueTime], Mapping[str, Any]],
    ) -> list[tuple[DueTime, Mapping[str, Any]]]:
        """Claim each ``(due time, its next trigger)`` and insert a task record for each claim won.

        One transaction: a claim and its record commit together or not at all. Rows are
        updated in (schedule id, position) order, so two beats lock in the same order and
        cannot deadlock each other.
        """
        won: list[tuple[DueTime, Mapping[str, Any]]] = []
        ordered = sorted(claims, key=lambda claim: (claim[0].schedule_id, claim[0].position))
        with self.engine.begin() as conn:
            for due, following in ordered:
                stmt = (
                    update(schedule_times)
                    .where(
                        t.schedule_id == due.schedule_id,
                        t.position == due.position,
                        t.revision == due.revision,
                        t.next_trigger_time == due.next_trigger_time,
                    )
                    .values(next_trigger_time=following)
                )
                if conn.execute(stmt).rowcount == 1:
                    won.append((due, record(due)))
            if won:
                conn.execute(insert(tasks), [dict(row) for _, row in won])
        return won

    def mark_enqueued(self, task_ids: Sequence[str], now: int) -> None:
        """Note that the firings' wake-ups went out, so the worker sweeper does not republish them."""
        if not task_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(tasks).where(tasks.c.id.in_(list(task_ids)), tasks.c.enqueued_at.is_(None))
                .values(enqueued_at=now)
            )
