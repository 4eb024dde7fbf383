"""The Celery app the beat acceptance tests run as ``celery -A tests.acceptance.beatapp beat|worker``.

Everything comes from the environment, as a deployed app would configure it. The
callbacks live in ``beatjobs``.
"""

from __future__ import annotations

import os

from celery import Celery

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
