"""The one read ``ctx.runtime.is_aborted()`` needs: a task's ``abort_requested`` flag."""

from __future__ import annotations

from sqlalchemy import Engine, select

from .schema import tasks


def abort_requested(engine: Engine, task_id: str) -> bool:
    """The flag; a removed record counts as aborted (there is nothing left to work for)."""
    with engine.connect() as conn:
        flag = conn.execute(select(tasks.c.abort_requested).where(tasks.c.id == task_id)).scalar()
    return True if flag is None else bool(flag)
