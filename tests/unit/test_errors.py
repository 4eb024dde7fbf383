"""The exception hierarchy: one root, validation errors are also ValueErrors."""

from __future__ import annotations

import pytest

import celery_bgtask
from celery_bgtask import BgTaskError, HandlerNotFoundError, NamespaceMismatchError, TaskValidationError
from celery_bgtask.errors import HandlerImportError, StoreUnavailableError


@pytest.mark.parametrize(
    "error",
    [
        TaskValidationError("retry_count", "must be an int >= 1"),
        NamespaceMismatchError("a:b:c", "a:b"),
        HandlerNotFoundError("image-resize"),
        HandlerImportError("module: cannot import 'x'"),
        StoreUnavailableError("down"),
    ],
)
def test_every_error_is_a_bgtask_error(error: Exception) -> None:
    assert isinstance(error, BgTaskError)
    with pytest.raises(BgTaskError):
        raise error


def test_validation_error_is_a_value_error_naming_field_and_rule() -> None:
    err = TaskValidationError("retry_count", "must be an int >= 1, got '3' (str)")
    assert isinstance(err, ValueError)
    assert err.field == "retry_count" and err.rule == "must be an int >= 1, got '3' (str)"
    assert str(err) == "retry_count: must be an int >= 1, got '3' (str)"
    with pytest.raises(ValueError):
        raise err


def test_other_errors_are_not_value_errors() -> None:
    assert not issubclass(NamespaceMismatchError, ValueError)
    assert not issubclass(HandlerNotFoundError, ValueError)
    missing = HandlerNotFoundError("image-resize")
    assert missing.task_type == "image-resize" and "'image-resize'" in str(missing)
    mismatch = NamespaceMismatchError("other:ns:1", "other:ns")
    assert mismatch.task_id == "other:ns:1" and mismatch.namespace == "other:ns"


def test_contract_names_are_exported() -> None:
    names = {"BackgroundTaskComponent", "BackgroundTask", "TaskStatus", "ErrorInfo", "HandlerOptions",
             "QueryResult", "SortDirection", "ScheduledTaskTime", "ScheduledTaskInfo", "BgTaskError",
             "TaskValidationError", "NamespaceMismatchError", "HandlerNotFoundError"}
    assert names <= set(celery_bgtask.__all__)
    for name in names:
        assert getattr(celery_bgtask, name) is not None
