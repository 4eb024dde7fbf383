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

from datetime import UTC, datetime, timedelta

import sync_jobs
from celery import Celery

from celery_bgtask import TaskSchedulerComponent

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
    sync_jobs.run_beat_until(app, sched, 3, before_stop=lambda: sched.pause_task("heartbeat"))

    print("\nthe schedules (the beat_schedule entry is one of them):")
    for task_id, times in sorted(sched.tasks_info().tasks.items()):
        for t in times:
            kind = f"cron {t.cron!r} in {t.timezone}" if t.cron else f"every {t.interval_seconds} s"
            print(f"  {task_id}: {kind}, paused {bool(t.paused)}, next {when(t.next_trigger_time)}, "
                  f"last fired {when(t.last_fired_at)} ({t.last_status or 'never'})")

    sync_jobs.remove_demo(sched)


if __name__ == "__main__":
    main()
