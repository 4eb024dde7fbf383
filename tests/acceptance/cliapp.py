"""The app ``celery -A tests.acceptance.cliapp bgtask ...`` and its workers load: a counting definition;
with BGTASK_METRICS_PORT, a worker serves Prometheus metrics there."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from celery_bgtask import BackgroundTaskComponent, TaskContext

app = Celery("cliapp", broker=os.environ["BGTASK_BROKER_URL"])
app.conf.update(
    task_default_queue=os.environ["BGTASK_QUEUE"],
    broker_connection_retry_on_startup=True,
    bgtask_database_url=os.environ["BGTASK_DATABASE_URL"],
    bgtask_poll_interval=100,
)
if "BGTASK_METRICS_PORT" in os.environ:
    app.conf.bgtask_metrics_port = int(os.environ["BGTASK_METRICS_PORT"])
bg = BackgroundTaskComponent(app, default_retain_for=-1)
bg.register_handler("echo", "tests.integration.handlers", "echo")
bg.register_handler("boom", "tests.integration.handlers", "boom")


@bg.definition(id="countTo", title="Count to n")
def count_to(ctx: TaskContext[dict[str, Any]]) -> Any:
    at = ctx.input.get("at", 0) + 1
    if at >= ctx.input["n"]:
        return ctx.response.done({"counted": at})
    return ctx.response.continue_({"at": at})
