"""The sweeper's reads and bulk writes: due wake-ups, expired leases, expired records, leases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Engine, and_, delete, select, union_all, update

from ...core.record import TaskRecord
from ...core.state import PENDING, PROCESSING, TERMINAL
from ..base import Due
from ..schema import tasks

c = tasks.c


def due_for_publish(engine: Engine, now: int, sent_before: int | None, types: Sequence[str],
                    limit: int) -> list[Due]:
    """Runnable records of ``types`` that need a wake-up: never sent (``sent_before`` None;
    earliest due first), or sent before ``sent_before`` and still not claimed (oldest first).

    The two are asked apart so that a backlog of the second kind, which the sweeper may leave
    alone while its messages wait in the queue, never hides a record of the first. Each is
    the union of two ordered, limited range scans of the index ``(status, enqueued_at,
    next_run_at)`` (pending; between iterations), so a poll reads at most ``limit`` records of
    each whatever the backlog (docs/performance.md has the figures).
    """
    if not types:
        return []
    sent = c.enqueued_at.is_(None) if sent_before is None else c.enqueued_at < sent_before
    order = c.next_run_at if sent_before is None else c.enqueued_at
    arms = [
        select(c.id, c.type, c.thread_id, c.attempt, c.enqueued_at, order.label("o"))
        .where(status, sent, c.next_run_at <= now, c.type.in_(list(types)))
        .order_by(order)
        .limit(limit)
        .subquery()
        for status in (c.status == PENDING, and_(c.status == PROCESSING, c.lease_until.is_(None)))
    ]
    both = union_all(*(select(arm) for arm in arms)).subquery()
    stmt = select(both.c.id, both.c.type, both.c.thread_id, both.c.attempt, both.c.enqueued_at)
    with engine.connect() as conn:
        return [Due(*row) for row in conn.execute(stmt.order_by(both.c.o).limit(limit))]


def expired_leases(engine: Engine, now: int, limit: int) -> list[TaskRecord]:
    stmt = select(tasks).where(c.status == PROCESSING, c.lease_until.is_not(None), c.lease_until < now).limit(limit)
    with engine.connect() as conn:
        return [TaskRecord(*row) for row in conn.execute(stmt)]


def expired_records(engine: Engine, now: int, limit: int) -> list[str]:
    stmt = select(c.id).where(c.date_retain_until.is_not(None), c.date_retain_until < now).limit(limit)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(stmt)]


def delete_expired(engine: Engine, task_ids: Sequence[str], now: int) -> int:
    """Delete those of ``task_ids`` still finished and past retention (one short transaction)."""
    if not task_ids:
        return 0
    stmt = delete(tasks).where(c.id.in_(list(task_ids)), c.status.in_(TERMINAL), c.date_retain_until.is_not(None),
                               c.date_retain_until < now)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount


def extend_leases(engine: Engine, owned: Mapping[str, int], lease_until: int) -> None:
    """Heartbeat: push out the lease of every (id, attempt) this process is running."""
    if not owned:
        return
    with engine.begin() as conn:
        for task_id, attempt in owned.items():
            conn.execute(update(tasks).where(c.id == task_id, c.attempt == attempt, c.status == PROCESSING)
                         .values(lease_until=lease_until))
