"""A publish that fails for a reason other than the broker (a broken install) is raised to the
caller of ``create`` / ``create_many`` / ``retry``, and the committed record is left for a
worker's sweeper to publish. Broker trouble itself stays a logged warning (``test_records``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery

from celery_bgtask import BackgroundTaskComponent, TaskStatus
from celery_bgtask.ids import parse_task_id
from celery_bgtask.timeutil import now_ms
from tests.helpers import set_fields, status_of, wait_for

BROKEN_TRANSPORT = "tests.integration.broken_transport:Transport"
MISSING = "No module named 'bgtask_test_package_that_is_not_installed'"


def _unsent(bg: BackgroundTaskComponent, urn: str) -> bool:
    """Pending, due, and marked as having no wake-up: what the sweeper publishes."""
    row = bg.store.get(parse_task_id(urn))
    assert row is not None
    return row.status == TaskStatus.PENDING.value and row.enqueued_at is None and row.next_run_at <= now_ms()


def test_a_broken_transport_is_raised_and_the_records_are_left_for_the_sweeper(
    make_component: Callable[..., BackgroundTaskComponent], celery_app_factory: Callable[..., Celery], worker: Any
) -> None:
    broken = celery_app_factory(broker_transport=BROKEN_TRANSPORT)
    producer = make_component(broken, default_retain_for=-1)  # keep the finished records to check them
    with pytest.raises(ModuleNotFoundError, match=MISSING):
        producer.create("echo", {"n": 1})
    with pytest.raises(ModuleNotFoundError, match=MISSING):
        producer.create_many("echo", [{"n": 2}, {"n": 3}], chunk_size=2)
    created = producer.query(task_type="echo").entities
    assert len(created) == 3
    urns = [f"background-task:celery:{t.id}" for t in created]
    assert all(_unsent(producer, urn) for urn in urns)

    # A task waiting for its retry: retry() commits "due now", then the publish raises.
    set_fields(producer, urns[0], next_run_at=now_ms() + 3_600_000, enqueued_at=None)
    with pytest.raises(ModuleNotFoundError, match=MISSING):
        producer.retry(urns[0])
    assert _unsent(producer, urns[0])

    # A worker with a working install (same database and queue) runs all of them.
    consumer = make_component()
    consumer.register_handler("echo", "tests.integration.handlers", "echo")
    with worker(consumer.app):
        wait_for(lambda: all(status_of(consumer, urn) is TaskStatus.SUCCESS for urn in urns),
                 what="the sweeper to publish the tasks whose publish raised")
    results = sorted(t.result["echo"]["n"] for t in consumer.query(task_type="echo").entities)
    assert results == [1, 2, 3]
