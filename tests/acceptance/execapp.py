"""The Celery app the execution acceptance tests run as ``celery -A tests.acceptance.execapp worker``.

Everything comes from the environment, as a deployed app would configure it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

from celery_bgtask import BackgroundTaskComponent

app = Celery("execapp", broker=os.environ["BGTASK_BROKER_URL"])
app.conf.update(
    task_default_queue=os.environ["BGTASK_QUEUE"],
    broker_connection_retry_on_startup=True,
    bgtask_database_url=os.environ["BGTASK_DATABASE_URL"],
    bgtask_lease=int(os.environ.get("BGTASK_LEASE", "1500")),
    bgtask_redeliver_after=int(os.environ.get("BGTASK_REDELIVER_AFTER", "300000")),
    bgtask_poll_interval=100,
)
bg = BackgroundTaskComponent(app)
_redis = redis.Redis.from_url(os.environ.get("BGTASK_TEST_REDIS", "redis://127.0.0.1:6379/0"))
PREFIX = os.environ["BGTASK_QUEUE"]


def hang_first(payload: dict[str, Any]) -> str:
    """The first attempt says it started and then hangs (to be SIGKILLed); later ones succeed.

    With ``"hang": False`` in the payload it only counts its attempts (a chunk's other tasks).
    """
    attempt = _redis.incr(f"{PREFIX}:{payload['key']}:attempts")
    if attempt == 1 and payload.get("hang", True):
        _redis.set(f"{PREFIX}:{payload['key']}:started", os.getpid())
        time.sleep(120)
    return f"done on attempt {attempt}"


_MAX = """
local n = redis.call('incr', KEYS[1])
if n > tonumber(redis.call('get', KEYS[2]) or '0') then redis.call('set', KEYS[2], n) end
return n
"""


def capped(payload: dict[str, Any]) -> int:
    """Tracks how many runs overlap (current and peak counters in Redis); each waits at a gate
    the test opens, so that runs would pile up without the cap, however slow the machine."""
    current, peak, gate = f"{PREFIX}:cap:current", f"{PREFIX}:cap:peak", f"{PREFIX}:cap:gate"
    _redis.eval(_MAX, 2, current, peak)
    try:
        deadline = time.monotonic() + 60
        while not _redis.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.01)
        return int(payload["n"])
    finally:
        _redis.decr(current)


bg.register_handler("hang-first", hang_first)
bg.register_handler("capped", capped, options={"max_worker_count": 2})
bg.register_handler("echo", "tests.integration.handlers", "echo")
