"""The event bus and its standing subscribers, on the memory store: every committed change is
told once, in order, after the commit; a failed transition tells nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from celery_bgtask.core import state
from celery_bgtask.core.events import EventBus, TaskEvent
from celery_bgtask.core.outcome import Outcome
from celery_bgtask.handlers import build_spec
from celery_bgtask.ids import new_id
from celery_bgtask.models import BackgroundTask
from celery_bgtask.store.memory import MemoryTaskStore
from celery_bgtask.subscribers import removal_when_done, state_callbacks
from celery_bgtask.writes import Writer

NOW = 1_700_000_000_000


def _record(store: MemoryTaskStore, retain_for: int = -1) -> str:
    record = state.create(new_id(), "t", "q", now=NOW, retain_for=retain_for, retry_interval=None, retries=None,
                          payload=None, next_run_at=NOW)
    store.insert([record])
    return record.id


def test_subscribers_hear_in_order_and_one_that_raises_stops_none(caplog: pytest.LogCaptureFixture) -> None:
    bus, heard = EventBus(), []

    def broken(event: TaskEvent) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(lambda e: heard.append(("first", e.transition)))
    bus.subscribe(broken)
    unsubscribe = bus.subscribe(lambda e: heard.append(("last", e.transition)))
    store = MemoryTaskStore()
    record = store.get(_record(store))
    assert record is not None
    with caplog.at_level(logging.ERROR, logger="celery_bgtask.core.events"):
        bus.emit(TaskEvent("claim", record, NOW))
    assert heard == [("first", "claim"), ("last", "claim")]
    [logged] = [r for r in caplog.records if r.name == "celery_bgtask.core.events"]
    assert logged.exc_info is not None and str(logged.exc_info[1]) == "subscriber bug"
    assert record.id in logged.getMessage()
    unsubscribe()
    bus.emit(TaskEvent("succeed", record, NOW))
    assert heard[-1] == ("first", "succeed")


def test_a_commit_is_told_once_with_the_new_record_and_a_refused_one_not_at_all() -> None:
    store, bus = MemoryTaskStore(), EventBus()
    told: list[TaskEvent] = []
    bus.subscribe(told.append)
    writer = Writer(store, bus, lambda wakeups, size: True)
    task_id = _record(store)
    claimed = writer.commit(task_id, state.claim("t", 0, NOW, NOW + 1000, "w"))
    assert claimed is not None
    assert writer.commit(task_id, state.claim("t", 0, NOW, NOW + 1000, "w")) is None  # a duplicate
    assert [(e.transition, e.record) for e in told] == [("claim", claimed)]
    assert told[0].changes_status


def test_the_callback_sees_a_finished_record_before_retain_for_0_removes_it() -> None:
    store, bus = MemoryTaskStore(), EventBus()
    seen: list[tuple[str, bool]] = []

    def callback(task: BackgroundTask[Any, Any]) -> None:
        seen.append((task.status.value, store.get(task.id) is not None))

    handlers = {"t": build_spec("t", lambda: None, None, callback, None)}
    bus.subscribe(state_callbacks(handlers))
    bus.subscribe(removal_when_done(store))
    writer = Writer(store, bus, lambda wakeups, size: True)
    task_id = _record(store, retain_for=0)
    claimed = writer.commit(task_id, state.claim("t", 0, NOW, NOW + 1000, "w"))
    assert claimed is not None and store.get(task_id) is not None  # processing: not finished, kept
    assert writer.commit(task_id, state.finish(claimed, Outcome("success", result="1"), NOW + 1)) is not None
    assert seen == [("processing", True), ("success", True)]
    assert store.get(task_id) is None  # removed once the callback had run


def test_continue_and_run_now_change_no_status_and_call_no_callback() -> None:
    store, bus = MemoryTaskStore(), EventBus()
    called: list[str] = []
    handlers = {"t": build_spec("t", lambda: None, None, lambda task: called.append(task.status.value), None)}
    bus.subscribe(state_callbacks(handlers))
    writer = Writer(store, bus, lambda wakeups, size: True)
    task_id = _record(store)
    claimed = writer.commit(task_id, state.claim("t", 0, NOW, NOW + 1000, "w"))
    assert claimed is not None
    assert writer.commit(task_id, state.finish(claimed, Outcome("continue", payload="{}", wait=60), NOW)) is not None
    assert called == ["processing"]


def test_a_retry_of_a_retain_for_0_task_keeps_its_record_for_the_next_attempt() -> None:
    store, bus = MemoryTaskStore(), EventBus()
    bus.subscribe(removal_when_done(store))
    writer = Writer(store, bus, lambda wakeups, size: True)
    record = state.create(new_id(), "t", "q", now=NOW, retain_for=0, retry_interval=10, retries=1, payload=None,
                          next_run_at=NOW)
    store.insert([record])
    claimed = writer.commit(record.id, state.claim("t", 0, NOW, NOW + 1000, "w"))
    assert claimed is not None
    retried = writer.commit(record.id, state.finish(claimed, Outcome("failed"), NOW + 1))
    assert retried is not None and retried.status == state.PENDING
    assert store.get(record.id) == retried  # pending again: nothing finished, nothing removed
