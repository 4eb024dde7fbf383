"""The sweeper's reads and bulk writes: due wake-ups, expired leases, expired records, leases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import ColumnElement, Engine, Select, and_, bindparam, delete, select, text, union_all, update

from ...core.record import TaskRecord
from ...core.state import PENDING, PROCESSING, TERMINAL
from ..base import Due
from ..engine import is_mysql
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


_MYSQL = ("mysql", "mariadb")


def _past_retention(now: int) -> tuple[ColumnElement[bool], ...]:
    return c.status.in_(TERMINAL), c.date_retain_until.is_not(None), c.date_retain_until < now


def _expired(now: int, limit: int) -> Select[tuple[str]]:
    """The ``limit`` records whose retention ended first: an ordered range of
    ``ix_bgtask_tasks_retain``, locked, skipping rows that another transaction holds. (Only
    finished records have a retention; the status is checked by the DELETE. Asked here too,
    it let PostgreSQL combine the status index, read every expired record and sort them.)"""
    stmt = select(c.id)
    for dialect in _MYSQL:  # else, when most rows are expired, a full scan and a sort that locks them all
        stmt = stmt.with_hint(tasks, "FORCE INDEX (ix_bgtask_tasks_retain)", dialect)
    return (stmt.where(c.date_retain_until.is_not(None), c.date_retain_until < now).order_by(c.date_retain_until)
            .limit(limit).with_for_update(skip_locked=True))


#: MariaDB deletes a batch that is a good part of a small table by a full scan, waiting for
#: every row another transaction holds; the primary key is forced (which only the
#: multiple-table form of DELETE accepts).
_MYSQL_DELETE = text(
    f"DELETE t FROM {tasks.name} AS t FORCE INDEX (PRIMARY) WHERE t.id IN :ids AND t.status IN :terminal "
    "AND t.date_retain_until IS NOT NULL AND t.date_retain_until < :now"
).bindparams(bindparam("ids", expanding=True), bindparam("terminal", expanding=True))


def delete_expired(engine: Engine, now: int, limit: int) -> int:
    """Delete up to ``limit`` finished records past retention in one short transaction; how many went.

    The ids are selected ``FOR UPDATE SKIP LOCKED`` and deleted in the same transaction, so
    the sweepers of several workers each take rows none of the others holds: none deletes
    what another is deleting, or waits for it. On MariaDB at READ COMMITTED, so that the
    range scan takes no gap locks that would hold up inserts. (One ``DELETE ... WHERE id IN
    (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`` is not enough on PostgreSQL: in a nested
    loop the subquery runs again for each row, skips the rows the statement itself has just
    deleted, and hands out the next ones, past ``n``; MariaDB allows no LIMIT there at all.)
    SQLite has one writer and no row locks; the DELETE checks each record again.
    """
    mysql = is_mysql(engine)
    source = engine.execution_options(isolation_level="READ COMMITTED") if mysql else engine
    with source.begin() as conn:
        ids = list(conn.execute(_expired(now, limit)).scalars())
        if not ids:
            return 0
        if mysql:
            return conn.execute(_MYSQL_DELETE, {"ids": ids, "terminal": list(TERMINAL), "now": now}).rowcount
        return conn.execute(delete(tasks).where(c.id.in_(ids), *_past_retention(now))).rowcount


def extend_leases(engine: Engine, owned: Mapping[str, int], lease_until: int) -> None:
    """Heartbeat: push out the lease of every (id, attempt) this process is running."""
    if not owned:
        return
    with engine.begin() as conn:
        for task_id, attempt in owned.items():
            conn.execute(update(tasks).where(c.id == task_id, c.attempt == attempt, c.status == PROCESSING)
                         .values(lease_until=lease_until))
