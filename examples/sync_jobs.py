"""The callbacks of ``daily_sync.py`` and ``beat_entries.py``. Scheduled callbacks must be
importable by name, because the worker that runs them imports them: a module like this
one, not ``__main__``. Also what the demos share: running beat for a while, and the clean-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from celery import Celery
from celery.beat import EmbeddedService
from celery.contrib.testing.worker import start_worker

from celery_bgtask import SCHEDULED_TYPE, TaskSchedulerComponent
from celery_bgtask.beat import Scheduler


def sync() -> dict[str, str]:
    """The seed example's daily sync."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(f"  sync running at {at}")
    return {"syncedAt": at}


def warm_cache() -> None:
    print("  cache warmed")


def run_beat_until(app: Celery, sched: TaskSchedulerComponent, firings: int,
                   before_stop: Callable[[], object] | None = None, timeout: float = 30) -> None:
    """Run an embedded beat and a worker until ``firings`` firing records have finished
    (or ``timeout`` seconds); ``before_stop`` runs while both still do."""
    beat = EmbeddedService(app, thread=True, scheduler_cls=Scheduler)
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        beat.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [t for t in sched.background.query(task_type=SCHEDULED_TYPE).entities if t.status.is_terminal]
            if len(done) >= firings:
                break
            time.sleep(0.05)
        if before_stop is not None:
            before_stop()
        beat.stop()
        beat.join(10)


def remove_demo(sched: TaskSchedulerComponent) -> None:
    """Remove every schedule and firing record a demo made, so a second run starts clean."""
    for task_id in list(sched.tasks_info().tasks):
        sched.remove_task(task_id)
    for task in sched.background.query(task_type=SCHEDULED_TYPE).entities:
        sched.background.remove(task.id)
    print("\nremoved the demo's schedules and records; done.")
