"""Fixtures shared by the acceptance tests (real celery subprocesses)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import REDIS_URL


@pytest.fixture
def r(env: dict[str, str]) -> Iterator[redis.Redis]:
    """A Redis client for the counters the subprocesses keep under the test's queue name; emptied after."""
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    for key in client.scan_iter(f"{env['BGTASK_QUEUE']}:*"):
        client.delete(key)
    client.close()
