"""Fixtures shared by the acceptance tests (real celery subprocesses)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from celery_bgtask import BackgroundTaskComponent
from tests.conftest import REDIS_URL


@pytest.fixture
def env(database_url: str, broker_url: str, queue_name: str) -> dict[str, str]:
    """What a worker subprocess is configured with (``execapp``, ``defapp``): a short lease, so a
    lost run is recovered within the test."""
    return {"BGTASK_DATABASE_URL": database_url, "BGTASK_BROKER_URL": broker_url, "BGTASK_QUEUE": queue_name,
            "BGTASK_LEASE": "1500", "BGTASK_TEST_REDIS": REDIS_URL}


@pytest.fixture
def bg(env: dict[str, str]) -> Iterator[BackgroundTaskComponent]:
    """The producer side, in the test process, on the workers' database and queue."""
    app = Celery("producer", broker=env["BGTASK_BROKER_URL"], set_as_current=False)
    app.conf.task_default_queue = env["BGTASK_QUEUE"]
    component = BackgroundTaskComponent(app, database_url=env["BGTASK_DATABASE_URL"])
    yield component
    component.engine.dispose()


@pytest.fixture
def r(env: dict[str, str]) -> Iterator[redis.Redis]:
    """A Redis client for the counters the subprocesses keep under the test's queue name; emptied after."""
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    for key in client.scan_iter(f"{env['BGTASK_QUEUE']}:*"):
        client.delete(key)
    client.close()
