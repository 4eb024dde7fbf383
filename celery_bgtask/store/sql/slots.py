"""Concurrency slots for ``HandlerOptions.max_worker_count``: a leased row per (type, slot)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..schema import slots

s = slots.c


def acquire(engine: Engine, task_type: str, capacity: int, holder: str, now: int, lease_until: int) -> int | None:
    """Take a free (or expired) slot of ``task_type``; None when all ``capacity`` are held."""
    with engine.begin() as conn:
        existing = {r[0] for r in conn.execute(select(s.slot).where(s.type == task_type, s.slot < capacity))}
    for n in range(capacity):
        if n not in existing:
            try:
                with engine.begin() as conn:
                    conn.execute(insert(slots), [{"type": task_type, "slot": n, "holder": None, "lease_until": None}])
            except IntegrityError:
                pass  # another worker made it first
    for n in range(capacity):
        free = or_(s.holder.is_(None), s.lease_until < now, s.holder == holder)
        stmt = update(slots).where(s.type == task_type, s.slot == n, free).values(holder=holder,
                                                                                  lease_until=lease_until)
        with engine.begin() as conn:
            if conn.execute(stmt).rowcount == 1:
                return n
    return None


def extend(engine: Engine, holders: Sequence[str], lease_until: int) -> None:
    if holders:
        with engine.begin() as conn:
            conn.execute(update(slots).where(s.holder.in_(list(holders))).values(lease_until=lease_until))


def release(engine: Engine, task_type: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(slots).where(s.type == task_type, s.holder == holder).values(holder=None,
                                                                                           lease_until=None))
