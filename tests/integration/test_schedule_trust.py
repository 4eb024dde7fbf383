"""What a scheduled firing runs comes from the schedule that ``add_task`` checked, never from the firing.

A firing's record could be written by other means than the beat (directly in the
database, say), so its payload is not trusted: the worker reads the callback from the
schedule's row.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import update

from celery_bgtask import TaskSchedulerComponent, TaskStatus
from celery_bgtask.ids import parse_task_id
from celery_bgtask.schedule_callbacks import FUNCTION
from celery_bgtask.store.schema import tasks
from celery_bgtask.timeutil import now_ms
from tests.helpers import wait_for
from tests.integration import scheduled_jobs

NIGHTLY = f"{FUNCTION}tests.integration.scheduled_jobs:nightly"
OTHER = f"{FUNCTION}tests.integration.scheduled_jobs:other"


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    scheduled_jobs.calls.clear()


def _one_firing(sched: TaskSchedulerComponent, schedule_id: str = "nightly") -> str:
    now = now_ms()
    sched.add_task(schedule_id, [{"nextTriggerTime": now - 1}], scheduled_jobs.nightly)
    (urn,) = sched.fire_due(now)
    return urn


def _set_payload(sched: TaskSchedulerComponent, urn: str, payload: dict[str, Any]) -> None:
    """Rewrite a committed firing's payload in the database, as someone with write access could."""
    with sched.engine.begin() as conn:
        conn.execute(update(tasks).where(tasks.c.id == parse_task_id(urn)).values(payload=json.dumps(payload)))


def _finished(sched: TaskSchedulerComponent, urn: str, worker: Any) -> Any:
    with worker(sched.app):
        return wait_for(lambda: (t := sched.background.get(urn)) is not None and t.status.is_terminal and t,
                        what="the firing to finish")


def test_a_firing_runs_its_schedules_callback_not_the_one_its_payload_names(make_scheduler: Any, worker: Any) -> None:
    sched = make_scheduler()
    urn = _one_firing(sched)
    record = sched.background.get(urn)
    assert record is not None and record.payload["callback"] == NIGHTLY  # still shown on the record
    _set_payload(sched, urn, {**record.payload, "callback": OTHER})
    done = _finished(sched, urn, worker)
    assert done.status is TaskStatus.SUCCESS and done.result == {"run": 1}
    assert scheduled_jobs.calls == {"nightly": 1}  # never "other"


def test_a_firing_of_a_removed_schedule_fails_and_runs_nothing(make_scheduler: Any, worker: Any) -> None:
    sched = make_scheduler()
    urn = _one_firing(sched)
    assert sched.remove_task("nightly") is True
    done = _finished(sched, urn, worker)
    assert done.status is TaskStatus.FAILED and done.error is not None
    assert done.error.name == "ScheduleNotFoundError"
    assert done.error.message == "scheduleId: there is no schedule 'nightly' (removed); nothing was run"
    assert scheduled_jobs.calls == {}


@pytest.mark.parametrize("payload", [{"callback": OTHER}, {"scheduleId": 7, "callback": OTHER}, [OTHER]])
def test_a_firing_that_names_no_schedule_fails_and_runs_nothing(
    make_scheduler: Any, worker: Any, payload: Any
) -> None:
    sched = make_scheduler()
    urn = _one_firing(sched)
    _set_payload(sched, urn, payload)
    done = _finished(sched, urn, worker)
    assert done.status is TaskStatus.FAILED and done.error is not None
    assert done.error.name == "TaskValidationError"
    assert done.error.message.startswith("payload.scheduleId: a firing must name its schedule")
    assert scheduled_jobs.calls == {}
