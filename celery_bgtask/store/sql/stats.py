"""Counts by type and status, and the oldest pending task per type, for ``celery bgtask stats``.

Both read the ``(type, status, date_created, id)`` index; see docs/performance.md for what
they cost on a large table.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from ..schema import tasks


@dataclass(frozen=True, slots=True)
class Stats:
    """``counts[(type, status)]`` and ``oldest_pending[type]`` (epoch ms of its ``date_created``)."""

    counts: dict[tuple[str, str], int]
    oldest_pending: dict[str, int]


def read_stats(engine: Engine) -> Stats:
    """One GROUP BY for the counts, one for the oldest pending task of each type."""
    by_status = select(tasks.c.type, tasks.c.status, func.count()).group_by(tasks.c.type, tasks.c.status)
    oldest = (
        select(tasks.c.type, func.min(tasks.c.date_created))
        .where(tasks.c.status == "pending")
        .group_by(tasks.c.type)
    )
    with engine.connect() as conn:
        counts = {(str(t), str(s)): int(n) for t, s, n in conn.execute(by_status)}
        pending = {str(t): int(at) for t, at in conn.execute(oldest)}
    return Stats(counts, pending)
