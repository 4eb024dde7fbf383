"""The callbacks of ``daily_sync.py`` and ``beat_entries.py``. Scheduled callbacks must be
importable by name, because the worker that runs them imports them: a module like this
one, not ``__main__``. Also the demos' clean-up.
"""

from __future__ import annotations

from datetime import UTC, datetime

from celery_bgtask import SCHEDULED_TYPE, TaskSchedulerComponent


def sync() -> dict[str, str]:
    """The seed example's daily sync."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(f"  sync running at {at}")
    return {"syncedAt": at}


def warm_cache() -> None:
    print("  cache warmed")


def remove_demo(sched: TaskSchedulerComponent) -> None:
    """Remove every schedule and firing record a demo made, so a second run starts clean."""
    for task_id in list(sched.tasks_info().tasks):
        sched.remove_task(task_id)
    for task in sched.background.query(task_type=SCHEDULED_TYPE).entities:
        sched.background.remove(task.id)
    print("\nremoved the demo's schedules and records; done.")
