"""``celery -A tests.acceptance.metricsapp worker -P prefork``: serves Prometheus metrics on BGTASK_METRICS_PORT."""

from __future__ import annotations

import os

from celery import Celery

from celery_bgtask import BackgroundTaskComponent

app = Celery("metricsapp", broker=os.environ["BGTASK_BROKER_URL"])
app.conf.update(
    task_default_queue=os.environ["BGTASK_QUEUE"],
    broker_connection_retry_on_startup=True,
    bgtask_database_url=os.environ["BGTASK_DATABASE_URL"],
    bgtask_poll_interval=100,
    bgtask_metrics_port=int(os.environ["BGTASK_METRICS_PORT"]),
)
bg = BackgroundTaskComponent(app, default_retain_for=-1)
bg.register_handler("echo", "tests.integration.handlers", "echo")
bg.register_handler("boom", "tests.integration.handlers", "boom")
