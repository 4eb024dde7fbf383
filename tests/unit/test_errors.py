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


def test_task_failed_survives_celerys_exception_copy_so_it_logs_as_expected() -> None:
    from celery.utils.serialization import get_pickleable_exception

    from celery_bgtask.celery.report import TaskFailed
    from celery_bgtask.models import ErrorInfo

    failed = TaskFailed("ab" * 16, ErrorInfo(name="RuntimeError", message="boom"))
    kept = get_pickleable_exception(failed)
    assert kept is failed  # not a BgTaskError stand-in, which would not match the task's throws
