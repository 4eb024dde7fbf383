"""Option and payload checks: strict types, never coerced, messages naming field and rule."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from pydantic import BaseModel

from celery_bgtask import TaskValidationError
from celery_bgtask import validation as v
from celery_bgtask.config import Settings

NOT_INTS: list[Any] = ["3", True, False, 3.0, [3], b"3"]


@pytest.mark.parametrize("bad", NOT_INTS)
@pytest.mark.parametrize(
    "check",
    [
        lambda value: v.strict_int("retry_count", value, minimum=1),
        lambda value: v.duration_ms("retry_interval", value),
        lambda value: v.retain_for_ms("retain_for", value),
    ],
    ids=["retry_count", "retry_interval", "retain_for"],
)
def test_numeric_options_reject_non_ints(check: Any, bad: Any) -> None:
    with pytest.raises(TaskValidationError) as info:
        check(bad)
    assert info.value.field in ("retry_count", "retry_interval", "retain_for")
    assert "must be an int" in info.value.rule
    assert type(bad).__name__ in info.value.rule  # the message says what it got


def test_strict_int_bounds_and_none() -> None:
    assert v.strict_int("retry_count", None, minimum=1) is None
    assert v.strict_int("retry_count", 1, minimum=1) == 1
    with pytest.raises(TaskValidationError, match=r"^retry_count: must be an int >= 1, got 0$"):
        v.strict_int("retry_count", 0, minimum=1)
    with pytest.raises(TaskValidationError, match="limit: must be an int >= 1"):
        v.strict_int("limit", None, minimum=1, allow_none=False)


def test_durations_accept_ints_and_timedeltas() -> None:
    assert v.duration_ms("retry_interval", 1) == 1
    assert v.duration_ms("retry_interval", timedelta(seconds=2.5)) == 2500
    assert v.duration_ms("retry_interval", None) is None
    with pytest.raises(TaskValidationError, match="retry_interval: must be an int >= 1, got 0"):
        v.duration_ms("retry_interval", 0)
    with pytest.raises(TaskValidationError, match="retry_interval: must be at least 1 ms"):
        v.duration_ms("retry_interval", timedelta(microseconds=500))
    with pytest.raises(TaskValidationError, match="retry_interval: must be at least 1 ms"):
        v.duration_ms("retry_interval", timedelta(seconds=-1))


def test_retain_for_accepts_forever_now_and_durations() -> None:
    assert v.retain_for_ms("retain_for", -1) == -1
    assert v.retain_for_ms("retain_for", 0) == 0
    assert v.retain_for_ms("retain_for", 120_000) == 120_000
    assert v.retain_for_ms("retain_for", timedelta(minutes=2)) == 120_000
    assert v.retain_for_ms("retain_for", timedelta(0)) == 0
    assert v.retain_for_ms("retain_for", None) is None
    with pytest.raises(TaskValidationError, match="retain_for: must be an int >= -1, got -2"):
        v.retain_for_ms("retain_for", -2)
    with pytest.raises(TaskValidationError, match="retain_for: must be at least 0 ms"):
        v.retain_for_ms("retain_for", timedelta(seconds=-1))


@pytest.mark.parametrize("bad", ["", "   ", None, 5, b"type", "x" * (v.MAX_TYPE_LENGTH + 1)])
def test_task_type_rejects_empty_non_str_and_too_long(bad: Any) -> None:
    with pytest.raises(TaskValidationError) as info:
        v.task_type("task_type", bad)
    assert info.value.field == "task_type"
    assert "str" in info.value.rule or "characters" in info.value.rule


def test_task_type_accepts_a_name() -> None:
    assert v.task_type("task_type", "image-resize") == "image-resize"
    assert v.task_type("task_type", "x" * v.MAX_TYPE_LENGTH) == "x" * v.MAX_TYPE_LENGTH


class _Payload(BaseModel):
    image_id: str
    width: int


def test_json_text_serialises_compactly_and_reads_models() -> None:
    assert v.json_text("payload", None, max_bytes=10) is None
    assert v.json_text("payload", {"a": [1, "é"]}, max_bytes=None) == '{"a":[1,"é"]}'
    assert v.json_text("payload", _Payload(image_id="hero", width=3), max_bytes=None) == (
        '{"image_id":"hero","width":3}'
    )


@pytest.mark.parametrize("bad", [{1, 2}, object(), {"when": timedelta(1)}, b"bytes"])
def test_json_text_rejects_what_json_cannot_hold(bad: Any) -> None:
    with pytest.raises(TaskValidationError, match=r"^payload: must be JSON-serialisable"):
        v.json_text("payload", bad, max_bytes=None)


@pytest.mark.parametrize("bad", [math.nan, {"x": math.inf}, [-math.inf]])
def test_json_text_rejects_nan_and_infinity(bad: Any) -> None:
    with pytest.raises(TaskValidationError, match=r"^payload: must be JSON-serialisable"):
        v.json_text("payload", bad, max_bytes=None)


def test_json_text_enforces_the_size_limit_in_utf8_bytes() -> None:
    assert v.json_text("payload", "a" * 8, max_bytes=10) == '"aaaaaaaa"'  # exactly 10 bytes
    with pytest.raises(TaskValidationError, match=r"^payload: JSON is 11 bytes, more than the maximum 10$"):
        v.json_text("payload", "a" * 9, max_bytes=10)
    with pytest.raises(TaskValidationError, match="more than the maximum 10"):
        v.json_text("payload", "ééééé", max_bytes=10)  # 7 characters of JSON, 12 bytes


def _settings(**given: Any) -> Settings:
    return Settings.resolve(Celery("settings-test", set_as_current=False), **given)


def test_max_payload_bytes_defaults_to_one_megabyte_and_is_configurable() -> None:
    assert _settings().max_payload_bytes == 1_000_000
    assert _settings(max_payload_bytes=2048).max_payload_bytes == 2048
    app = Celery("settings-test", set_as_current=False)
    app.conf.bgtask_max_payload_bytes = 4096
    assert Settings.resolve(app).max_payload_bytes == 4096
    with pytest.raises(TaskValidationError, match=r"^max_payload_bytes: must be an int >= 1"):
        _settings(max_payload_bytes="4096")


def test_component_defaults_are_validated_strictly() -> None:
    defaults = _settings()
    assert defaults.default_retry_interval == 5000 and defaults.default_retain_for == 0
    assert _settings(default_retry_interval=timedelta(seconds=1)).default_retry_interval == 1000
    assert _settings(default_retain_for=-1).default_retain_for == -1
    for field, bad in [("default_retry_interval", True), ("default_retain_for", "0"),
                       ("cleanup_interval", 0), ("default_retry_interval", 1.5)]:
        with pytest.raises(TaskValidationError) as info:
            _settings(**{field: bad})
        assert info.value.field == field
