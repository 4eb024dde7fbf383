"""The TWIN seed examples (background-task-models docs), read into our models and written back unchanged."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from celery_bgtask import BackgroundTask, ScheduledTaskInfo, ScheduledTaskTime, TaskStatus

QUEUED_TASK: dict[str, Any] = {
    "id": "7f4b2c18a4f44f1f9ff7348e260ca4c2",
    "type": "catalogue-import",
    "threadId": "0",
    "dateCreated": "2026-03-09T10:30:00.000Z",
    "dateModified": "2026-03-09T10:30:00.000Z",
    "status": "pending",
    "payload": {"source": "tenant-a", "batchSize": 250},
    "retriesRemaining": 3,
    "retryInterval": 5000,
}

COMPLETED_TASK: dict[str, Any] = {
    "id": "7f4b2c18a4f44f1f9ff7348e260ca4c2",
    "type": "catalogue-import",
    "threadId": "3",
    "dateCreated": "2026-03-09T10:30:00.000Z",
    "dateModified": "2026-03-09T10:31:22.000Z",
    "dateCompleted": "2026-03-09T10:31:22.000Z",
    "status": "success",
    "result": {"inserted": 248, "skipped": 2},
}

EVERY_QUARTER_HOUR: dict[str, Any] = {"intervalMinutes": 15}
SCHEDULE: dict[str, Any] = {"tasks": {"cleanup-cache": [EVERY_QUARTER_HOUR]}}
TERMINAL_STATUSES: list[str] = ["success", "failed", "cancelled"]


def _twin(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def test_queued_task_round_trips() -> None:
    task = BackgroundTask[dict[str, Any], dict[str, int]].model_validate(QUEUED_TASK)
    assert task.status is TaskStatus.PENDING
    assert task.payload == {"source": "tenant-a", "batchSize": 250}
    assert task.retries_remaining == 3 and task.retry_interval == 5000
    assert _twin(task) == QUEUED_TASK


def test_completed_task_round_trips() -> None:
    task = BackgroundTask[Any, dict[str, int]].model_validate(COMPLETED_TASK)
    assert task.status is TaskStatus.SUCCESS
    assert task.result is not None and task.result["inserted"] == 248
    assert task.date_completed == task.date_modified
    assert _twin(task) == COMPLETED_TASK


def test_every_quarter_hour_round_trips() -> None:
    time = ScheduledTaskTime.model_validate(EVERY_QUARTER_HOUR)
    assert time.interval_minutes == 15 and time.next_trigger_time is None
    assert time.interval_ms == 15 * 60_000
    assert _twin(time) == EVERY_QUARTER_HOUR


def test_scheduled_task_info_round_trips() -> None:
    info = ScheduledTaskInfo.model_validate(SCHEDULE)
    assert info.tasks["cleanup-cache"][0].interval_minutes == 15
    assert _twin(info) == SCHEDULE


def test_terminal_statuses_round_trip() -> None:
    adapter = TypeAdapter(list[TaskStatus])
    statuses = adapter.validate_python(TERMINAL_STATUSES)
    assert statuses == [TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED]
    assert all(s.is_terminal for s in statuses)
    assert not TaskStatus.PENDING.is_terminal and not TaskStatus.PROCESSING.is_terminal
    assert ", ".join(statuses) == "success, failed, cancelled"
    assert adapter.dump_python(statuses, mode="json") == TERMINAL_STATUSES
