"""Test helpers shared by every tier (import them; they are not fixtures)."""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine, func, select

from celery_bgtask import TaskStatus
from celery_bgtask.core import state
from celery_bgtask.core.state import Expect, Transition
from celery_bgtask.ids import parse_task_id
from celery_bgtask.store.schema import tasks
from celery_bgtask.timeutil import now_ms

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if port_open(host, port):
        return
    message = f"{name} is not answering on {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing service is a failure)")
    pytest.skip(message)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def status_of(bg: Any, urn: str) -> TaskStatus | None:
    """The task's status, or None once its record is gone."""
    task = bg.get(urn)
    return task.status if task else None


def set_fields(bg: Any, urn: str, **values: Any) -> None:
    """Set columns of a record directly (a state a worker would produce), through the store."""
    assert bg.store.apply(parse_task_id(urn), write(values)) is not None


def write(values: dict[str, Any], **expect: Any) -> Transition:
    """A transition that sets ``values`` wherever the record matches ``expect`` (a test's shortcut)."""
    return Transition("test_write", Expect(**expect), values)


def claim(bg: Any, task_id: str, task_type: str, attempt: int, now: int, lease_until: int, worker: str) -> Any:
    """The worker's claim, as one store call."""
    return bg.store.apply(task_id, state.claim(task_type, attempt, now, lease_until, worker))


def finish(bg: Any, task_id: str, attempt: int, values: dict[str, Any]) -> Any:
    """Write ``values`` as a run's outcome would: fenced by the attempt and the lease."""
    return bg.store.apply(task_id, write(values, statuses=(state.PROCESSING,), attempt=attempt, leased=True))


def revoke_when_listening(app: Celery, task_id: str, **options: Any) -> None:
    """``app.control.revoke`` once a worker answers a ping: a broadcast sent before the worker
    consumes its control queue is lost."""
    wait_for(lambda: app.control.ping(timeout=0.5), what="a worker to answer control commands")
    app.control.revoke(task_id, **options)


def take_messages(app: Celery, queue: str) -> list[tuple[dict[str, Any], list[Any], dict[str, Any]]]:
    """Take every message off ``queue``: the headers, args and kwargs of each, oldest first."""
    out = []
    with app.connection_for_write() as conn:
        while (message := conn.default_channel.basic_get(queue, no_ack=True)) is not None:
            args, kwargs, _ = message.decode()
            out.append((message.headers, args, kwargs))
    return out


def table_rows(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the task and schedule tables, sorted: compare before and after a refused call."""
    from sqlalchemy import select

    from celery_bgtask.store.schema import schedule_times, schedules, tasks

    with engine.connect() as conn:
        return {t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
                for t in (tasks, schedules, schedule_times)}


def deep(depth: int, leaf: Any = 1) -> Any:
    """A value nested ``depth`` levels deep, alternating dicts and lists."""
    value = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def refused(bg: Any, field: str, call: Callable[[], Any]) -> Any:
    """``call`` raises ``TaskValidationError`` for ``field``, and the tables are as they were."""
    from celery_bgtask import TaskValidationError

    before = table_rows(bg.engine)
    with pytest.raises(TaskValidationError) as info:
        call()
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(f"{field}: ")
    assert table_rows(bg.engine) == before
    return info.value


def dumps_back(task: Any) -> None:
    """The record dumps to TWIN JSON, as text, and validates again from it."""
    import json

    from celery_bgtask import BackgroundTask

    data = task.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert BackgroundTask.model_validate(json.loads(json.dumps(data, ensure_ascii=False))).id == task.id


def readable(bg: Any, urn: str, **query: Any) -> Any:
    """The record reads back through ``get`` and ``query`` (filtered exactly as asked), and dumps as JSON."""
    task = bg.get(urn)
    assert task is not None
    dumps_back(task)
    page = bg.query(limit=1000, **query)
    assert task.id in {t.id for t in page.entities}
    for entity in page.entities:
        dumps_back(entity)
        if "task_type" in query:
            assert entity.type == query["task_type"], f"query(task_type={query['task_type']!r}) gave {entity.type!r}"
    return task


def insert_finished(bg: Any, n: int, retain_until: int | None) -> list[str]:
    """Insert ``n`` finished (``success``) records straight into the store, the ``i``-th one's
    retention ending ``i`` ms after ``retain_until`` (None: kept forever); their ids, in that order."""
    bg.ensure_ready()
    now = now_ms()
    records = bg.build_records("done", [None] * n, retry_count=None, retry_interval=None, retain_for=None)
    rows = [dataclasses.replace(record, status="success", date_completed=now, next_run_at=None,
                                date_retain_until=None if retain_until is None else retain_until + i)
            for i, record in enumerate(records)]
    for offset in range(0, n, 2000):
        bg.store.insert(rows[offset:offset + 2000])
    return [row.id for row in rows]


def count_records(engine: Engine) -> int:
    """How many task records the database holds."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tasks)).scalar_one())
