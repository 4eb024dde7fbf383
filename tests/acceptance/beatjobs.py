"""Scheduled callbacks of the beat acceptance tests. They count their runs in Redis, under
the test's queue name, so a test sees every run in every worker process. Importing this
module needs no environment, so the test process can name these callbacks in ``add_task``.
"""

from __future__ import annotations

import os
from functools import cache

import redis


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ.get("BGTASK_TEST_REDIS", "redis://127.0.0.1:6379/0"))


def fired() -> int:
    """Counts every run, in whichever worker process runs it."""
    return int(_client().incr(f"{os.environ['BGTASK_QUEUE']}:fired"))


def broken() -> None:
    _client().incr(f"{os.environ['BGTASK_QUEUE']}:broken")
    raise RuntimeError("scheduled job broke")
