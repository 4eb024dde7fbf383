"""``beat_schedule`` entries and cron times on the embedded default (SQLite + in-memory broker).

The app's ``beat_schedule`` has a ``timedelta(seconds=1)`` entry; under
``celery_bgtask.beat.Scheduler`` it is kept in the database under its name, like a
schedule added with ``add_task``, so with several beats it fires once per second in all.
A cron time in Europe/Berlin is added beside it (09:00 local on weekdays, whatever the
DST offset). The demo runs beat for a few seconds, then pauses the entry and shows each
schedule's last firing. In production: ``celery -A proj.app beat -S bgtask``.

Run it with ``python examples/beat_entries.py``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import sync_jobs
from celery import Celery
from celery.beat import EmbeddedService
from celery.contrib.testing.worker import start_worker

from celery_bgtask import SCHEDULED_TYPE, TaskSchedulerComponent
from celery_bgtask.beat import Scheduler

app = Celery("beat_entries")  # no broker configured: celery_bgtask picks memory://
app.conf.beat_schedule = {
    "heartbeat": {"task": "beat_entries.heartbeat", "schedule": timedelta(seconds=1), "args": ["db"]},
}
sched = TaskSchedulerComponent(app, retain_for=-1, poll_interval=100)


@app.task(name="beat_entries.heartbeat")
def heartbeat(target: str) -> str:
    print(f"heartbeat of {target}")
    return "ok"


def when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def main() -> None:
    sched.add_task("weekday-report", [{"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}], "sync_jobs:sync")
    beat = EmbeddedService(app, thread=True, scheduler_cls=Scheduler)
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        beat.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = [t for t in sched.background.query(task_type=SCHEDULED_TYPE).entities if t.status.is_terminal]
            if len(done) >= 3:
                break
            time.sleep(0.05)
        sched.pause_task("heartbeat")
        beat.stop()
        beat.join(10)

    print("\nthe schedules (the beat_schedule entry is one of them):")
    for task_id, times in sorted(sched.tasks_info().tasks.items()):
        for t in times:
            kind = f"cron {t.cron!r} in {t.timezone}" if t.cron else f"every {t.interval_seconds} s"
            print(f"  {task_id}: {kind}, paused {bool(t.paused)}, next {when(t.next_trigger_time)}, "
                  f"last fired {when(t.last_fired_at)} ({t.last_status or 'never'})")

    sync_jobs.remove_demo(sched)


if __name__ == "__main__":
    main()
