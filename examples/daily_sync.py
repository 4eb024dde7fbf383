"""The TWIN scheduler seed example on the embedded default (SQLite + in-memory broker).

``daily-sync`` first runs in 15 minutes, then daily. The demo lists it, then shows firings
without waiting 15 minutes: a one-off due in a second, and a daily report whose beat "was
down" for three days (it fires once, not three times, and moves to its next future time).
The beat here is Celery's own beat service with ``celery_bgtask.beat.Scheduler``, in a
thread beside an in-process worker; in production it is ``celery -A proj.app beat -S bgtask``.

Run it with ``python examples/daily_sync.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sync_jobs
from celery import Celery

from celery_bgtask import SCHEDULED_TYPE, ScheduledTaskTime, TaskSchedulerComponent
from celery_bgtask.timeutil import now_ms

app = Celery("daily_sync")  # no broker configured: celery_bgtask picks memory://
sched = TaskSchedulerComponent(app, retain_for=-1, poll_interval=100)  # keep the firing records to show them
DAY = 86_400_000


def when(ms: int | None) -> str:
    return "never again" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def show_schedules() -> None:
    for task_id, times in sched.tasks_info().tasks.items():
        print(f"  {task_id}: " + "; ".join(f"next {when(t.next_trigger_time)}, "
                                          f"{json.dumps(t.model_dump(by_alias=True, exclude_none=True))}"
                                          for t in times))


def main() -> None:
    now = now_ms()
    sched.add_task("daily-sync", [ScheduledTaskTime(next_trigger_time=now + 15 * 60 * 1000, interval_days=1)],
                   sync_jobs.sync)
    info = sched.tasks_info()
    print(f"daily-sync has {len(info.tasks['daily-sync'])} time:")  # 1
    show_schedules()

    sched.add_task("warm-cache", [{"nextTriggerTime": now_ms() + 1000}], sync_jobs.warm_cache)  # a one-off
    missed = now - 3 * DAY - 3_600_000
    sched.add_task("daily-report", [{"nextTriggerTime": missed, "intervalDays": 1}], "sync_jobs:sync")
    print("\nadded a one-off due in a second, and a daily report last due three days ago; running beat:")

    sync_jobs.run_beat_until(app, sched, 2)

    print("\nthe firing records (one per firing, queryable like any task):")
    for task in sched.background.query(task_type=SCHEDULED_TYPE).entities:
        print(f"  {task.payload['scheduleId']}: {task.status.value}, trigger {when(task.payload['triggerTime'])}, "
              f"result {json.dumps(task.result)}")
    print("\nthe schedules now (the one-off stays listed with no next trigger):")
    show_schedules()

    sync_jobs.remove_demo(sched)


if __name__ == "__main__":
    main()
