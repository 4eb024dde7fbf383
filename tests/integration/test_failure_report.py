"""A handler's failure reaches Celery's log and events as the user's own exception and traceback."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from celery.events.event import get_exchange
from kombu import Queue

from celery_bgtask import TaskStatus
from tests.helpers import status_of, wait_for

H = "tests.integration.handlers"


def test_the_failure_log_line_carries_the_handlers_traceback(
    make_component: Any, worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bg = make_component()
    bg.register_handler("boom", H, "boom")
    caplog.set_level(logging.INFO, logger="celery.app.trace")
    urn = bg.create("boom", {"a": 1}, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="failed")
        wait_for(lambda: any(r.exc_info for r in caplog.records if r.name == "celery.app.trace"),
                 what="the failure's log line")
    [line] = [r for r in caplog.records if r.name == "celery.app.trace" and r.exc_info]
    assert line.exc_info is not None
    text = caplog.text
    assert "ValueError('boom')" in line.getMessage()
    assert 'handlers.py", line' in text and "in boom" in text  # the user's frame
    assert "TaskFailed" not in text


def test_a_retry_log_line_names_the_handlers_exception(
    make_component: Any, worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bg = make_component()
    bg.register_handler("counted", H, "counted")
    caplog.set_level(logging.INFO, logger="celery.app.trace")
    urn = bg.create("counted", {"key": uuid.uuid4().hex, "fail_times": 1}, retry_count=1, retry_interval=50)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) in (TaskStatus.SUCCESS, None), what="success after one retry")
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage().lower()]
    assert any("RuntimeError('attempt 1 fails')" in m for m in retries), retries


# The embedded default's in-memory broker routes events to a bound queue; Redis sends them by
# PUB/SUB, which only a live subscriber sees.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_task_failed_event_carries_the_handlers_exception_and_traceback(
    make_component: Any, celery_app_factory: Any, worker: Any, queue_name: str
) -> None:
    app = celery_app_factory(worker_send_task_events=True)
    bg = make_component(app)
    bg.register_handler("boom", H, "boom")
    with app.connection_for_write() as conn:
        # A queue bound to Celery's event exchange before the worker starts, read afterwards.
        events = Queue(f"{queue_name}-events", get_exchange(conn), routing_key="task.#", auto_delete=True)
        channel = conn.default_channel
        events.bind(channel).declare()
        failed: list[dict[str, Any]] = []

        def failed_event() -> bool:
            while (message := channel.basic_get(events.name, no_ack=True)) is not None:
                event = message.decode()
                if event.get("type") == "task-failed":
                    failed.append(event)
            return bool(failed)

        try:
            with worker(app):
                urn = bg.create("boom", {"a": 1}, retain_for=-1)
                wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="failed")
                wait_for(failed_event, what="a task-failed event")
        finally:
            events.bind(channel).delete()
    [event] = failed
    assert event["exception"] == "ValueError('boom')"
    assert "in boom" in event["traceback"] and "ValueError: boom" in event["traceback"]
