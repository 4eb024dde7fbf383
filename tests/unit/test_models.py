"""The pydantic models: names in both cases, millisecond UTC dates, strict options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from celery_bgtask import (
    BackgroundTask,
    ErrorInfo,
    HandlerOptions,
    QueryResult,
    ScheduledTaskTime,
    SortDirection,
    TaskStatus,
)

SNAKE: dict[str, Any] = {
    "id": "0123456789abcdef0123456789abcdef",
    "type": "image-resize",
    "thread_id": "celery",
    "date_created": "2026-03-09T10:30:00.000Z",
    "date_modified": "2026-03-09T10:30:01.500Z",
    "date_retain_until": "2026-03-09T10:32:01.500Z",
    "retry_interval": 3000,
    "retries_remaining": 2,
    "status": "failed",
    "payload": {"imageId": "hero"},
    "error": {"name": "ValueError", "message": "boom"},
}
CAMEL: dict[str, Any] = {
    "id": SNAKE["id"],
    "type": SNAKE["type"],
    "threadId": "celery",
    "dateCreated": SNAKE["date_created"],
    "dateModified": SNAKE["date_modified"],
    "dateRetainUntil": SNAKE["date_retain_until"],
    "retryInterval": 3000,
    "retriesRemaining": 2,
    "status": "failed",
    "payload": {"imageId": "hero"},
    "error": {"name": "ValueError", "message": "boom"},
}


def _task(**changes: Any) -> BackgroundTask[Any, Any]:
    return BackgroundTask[Any, Any].model_validate({**SNAKE, **changes})


def test_snake_and_camel_case_inputs_give_the_same_model() -> None:
    snake = BackgroundTask[Any, Any].model_validate(SNAKE)
    camel = BackgroundTask[Any, Any].model_validate(CAMEL)
    assert snake == camel
    assert snake.thread_id == "celery" and snake.retries_remaining == 2
    assert snake.error == ErrorInfo(name="ValueError", message="boom")
    assert snake.model_dump(mode="json", by_alias=True, exclude_none=True) == CAMEL


def test_dates_serialise_as_iso_utc_with_milliseconds_and_z() -> None:
    task = _task(date_created=datetime(2026, 3, 9, 10, 30, tzinfo=UTC))
    dumped = task.model_dump(mode="json", by_alias=True)
    assert dumped["dateCreated"] == "2026-03-09T10:30:00.000Z"
    assert dumped["dateModified"] == "2026-03-09T10:30:01.500Z"
    assert dumped["dateCompleted"] is None
    # Python mode keeps real datetimes.
    assert task.model_dump()["date_created"] == datetime(2026, 3, 9, 10, 30, tzinfo=UTC)


def test_naive_datetimes_are_taken_as_utc_and_truncated_to_ms() -> None:
    task = _task(date_created=datetime(2026, 3, 9, 10, 30, 0, 123987))
    assert task.date_created == datetime(2026, 3, 9, 10, 30, 0, 123000, tzinfo=UTC)
    assert task.date_created.tzinfo is not None and task.date_created.utcoffset() == timedelta(0)
    assert task.model_dump(mode="json")["date_created"] == "2026-03-09T10:30:00.123Z"


def test_non_utc_aware_datetimes_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    task = _task(date_created=datetime(2026, 3, 9, 12, 30, 0, 456789, tzinfo=plus_two),
                 date_modified="2026-03-09T05:30:00.5-05:00")
    assert task.date_created == datetime(2026, 3, 9, 10, 30, 0, 456000, tzinfo=UTC)
    assert task.date_created.utcoffset() == timedelta(0)
    assert task.model_dump(mode="json", by_alias=True)["dateModified"] == "2026-03-09T10:30:00.500Z"


def test_json_round_trip_gives_an_equal_model() -> None:
    task = _task(
        date_created=datetime(2026, 3, 9, 10, 30, 0, 999999, tzinfo=timezone(timedelta(hours=-3))),
        result={"n": [1, 2.5, None, "x"]},
        worker="host:1",  # extra fields are allowed and kept
    )
    for text in (task.model_dump_json(), task.model_dump_json(by_alias=True, exclude_none=True)):
        back = BackgroundTask[Any, Any].model_validate_json(text)
        assert back == task
    assert task.model_dump()["worker"] == "host:1"


def test_status_is_a_str_enum() -> None:
    assert TaskStatus("pending") is TaskStatus.PENDING
    assert [s.value for s in TaskStatus] == ["pending", "processing", "success", "failed", "cancelled"]
    assert TaskStatus.CANCELLED == "cancelled"
    assert SortDirection.ASCENDING == "asc" and SortDirection.DESCENDING == "desc"
    with pytest.raises(ValidationError):
        _task(status="done")


def test_error_info_from_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        info = ErrorInfo.from_exception(exc)
    assert info.name == "ValueError" and info.message == "boom"
    assert info.stack is not None and "ValueError: boom" in info.stack
    assert info.inner is None


def test_error_info_keeps_the_cause_as_inner() -> None:
    try:
        try:
            raise KeyError("k")
        except KeyError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        info = ErrorInfo.from_exception(exc, with_stack=False)
    assert info.stack is None
    assert info.inner is not None and info.inner.name == "KeyError"
    dumped = info.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert ErrorInfo.model_validate(dumped) == info


def test_query_result_reads_camel_case_tasks() -> None:
    page = QueryResult.model_validate({"entities": [CAMEL], "cursor": None})
    assert page.entities[0].thread_id == "celery" and page.cursor is None


def test_scheduled_task_time_accepts_both_cases_and_sums_intervals() -> None:
    snake = ScheduledTaskTime(next_trigger_time=1_773_052_200_000, interval_days=1, interval_hours=2)
    camel = ScheduledTaskTime.model_validate({"nextTriggerTime": 1_773_052_200_000, "intervalDays": 1,
                                              "intervalHours": 2})
    assert snake == camel
    assert snake.interval_ms == (24 + 2) * 3_600_000
    assert ScheduledTaskTime(next_trigger_time=5).interval_ms is None


@pytest.mark.parametrize("field", ["interval_days", "interval_hours", "interval_minutes"])
@pytest.mark.parametrize("bad", ["15", True, 15.0, 0, -1])
def test_scheduled_task_time_rejects_bad_intervals(field: str, bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        ScheduledTaskTime.model_validate({field: bad})
    assert info.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize("bad", ["1773052200000", False, 1.5, -1])
def test_scheduled_task_time_rejects_bad_trigger_times(bad: Any) -> None:
    with pytest.raises(ValidationError):
        ScheduledTaskTime(next_trigger_time=bad)


def test_scheduled_task_time_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        ScheduledTaskTime.model_validate({"intervalWeeks": 1})


def test_handler_options_in_both_cases() -> None:
    opts = HandlerOptions.model_validate({"maxWorkerCount": 4, "idleShutdownTimeout": 60000,
                                          "initialiseMethod": "initialise", "shutdownMethod": "shutdown"})
    assert opts == HandlerOptions(max_worker_count=4, idle_shutdown_timeout=60000,
                                  initialise_method="initialise", shutdown_method="shutdown")
    assert HandlerOptions().max_worker_count is None


@pytest.mark.parametrize("field", ["max_worker_count", "idle_shutdown_timeout"])
@pytest.mark.parametrize("bad", ["4", True, 4.0, 0, -3])
def test_handler_options_reject_bad_numbers(field: str, bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        HandlerOptions.model_validate({field: bad})
    assert info.value.errors()[0]["loc"] == (field,)
