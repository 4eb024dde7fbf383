"""The definitions the acceptance tests run, and the app a ``celery -A tests.acceptance.defapp worker`` loads.

``register`` is shared: the worker registers the definitions to run them, the test
process registers them to trigger them (a trigger validates input against the definition).
Progress is written to Redis under the test's queue name, so the test can watch it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery
from pydantic import BaseModel

from celery_bgtask import BackgroundTask, BackgroundTaskComponent, TaskContext


class Page(BaseModel):
    offset: int = 0
    last: int = 4


def register(bg: BackgroundTaskComponent, prefix: str, redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)

    def hook(name: str) -> Any:
        def record(task: BackgroundTask[Any, Any]) -> None:
            r.rpush(f"{prefix}:{task.id}:hooks", f"{name}:{task.status.value}")

        return record

    hooks = {n: hook(n) for n in ("on_done", "on_error", "on_abort", "on_max_iterations")}

    @bg.definition(id="waitForAbort", retain_for=-1, **hooks)
    def wait_for_abort(ctx: TaskContext[dict[str, Any]]) -> Any:
        r.set(f"{prefix}:{ctx.task.id}:started", os.getpid())
        deadline = time.monotonic() + 60
        while not ctx.runtime.is_aborted():
            if time.monotonic() > deadline:
                return ctx.response.error("no abort arrived within 60 s")
            time.sleep(0.02)
        return ctx.response.aborted()

    @bg.definition(id="crashOnce", input_model=Page, retain_for=-1, **hooks)
    def crash_once(ctx: TaskContext[Page]) -> Any:
        """One page per iteration; the first run of page 2 hangs so the test can SIGKILL its worker."""
        key = f"{prefix}:{ctx.task.id}"
        r.rpush(f"{key}:offsets", ctx.input.offset)
        if ctx.input.offset == 2 and r.incr(f"{key}:page2") == 1:
            r.set(f"{key}:hanging", os.getpid())
            time.sleep(120)
        if ctx.input.offset >= ctx.input.last:
            return ctx.response.done({"offset": ctx.input.offset, "iteration": ctx.iteration})
        return ctx.response.continue_({"offset": ctx.input.offset + 1})


if "BGTASK_QUEUE" in os.environ:
    app = Celery("defapp", broker=os.environ["BGTASK_BROKER_URL"])
    app.conf.update(
        task_default_queue=os.environ["BGTASK_QUEUE"],
        broker_connection_retry_on_startup=True,
        bgtask_database_url=os.environ["BGTASK_DATABASE_URL"],
        bgtask_lease=int(os.environ.get("BGTASK_LEASE", "1500")),
        bgtask_poll_interval=100,
    )
    bg = BackgroundTaskComponent(app)
    register(bg, os.environ["BGTASK_QUEUE"], os.environ.get("BGTASK_TEST_REDIS", "redis://127.0.0.1:6379/0"))
