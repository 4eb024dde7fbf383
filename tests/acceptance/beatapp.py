"""The Celery app the beat acceptance tests run as ``celery -A tests.acceptance.beatapp beat|worker``.

Everything comes from the environment, as a deployed app would configure it. The
callbacks live in ``beatjobs``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import redis
from celery import Celery
from celery.schedules import crontab

from celery_bgtask import TaskSchedulerComponent

PREFIX = os.environ["BGTASK_QUEUE"]
app = Celery("beatapp", broker=os.environ["BGTASK_BROKER_URL"])
app.conf.update(
    task_default_queue=PREFIX,
    broker_connection_retry_on_startup=True,
    timezone=os.environ.get("BGTASK_TIMEZONE", "UTC"),
    bgtask_database_url=os.environ["BGTASK_DATABASE_URL"],
    bgtask_poll_interval=100,
    bgtask_beat_poll_interval=200,
)
sched = TaskSchedulerComponent(app, retain_for=-1)


@app.task(name="beatapp.count")
def count(name: str, *, step: int = 1) -> int:
    """A beat_schedule entry's task: counts its runs in Redis under the test's queue."""
    client = redis.Redis.from_url(os.environ["BGTASK_BROKER_URL"])
    return int(client.incr(f"{PREFIX}:entry:{name}", step))


if os.environ.get("BGTASK_BEAT_ENTRIES"):
    # The two smallest periods beat users write: every minute, and every 5 seconds.
    app.conf.beat_schedule = {
        "every-minute": {"task": "beatapp.count", "schedule": crontab(), "args": ["every-minute"]},
        "every-5s": {"task": "beatapp.count", "schedule": timedelta(seconds=5), "args": ["every-5s"],
                     "kwargs": {"step": 1}, "options": {"priority": 3}},
    }
