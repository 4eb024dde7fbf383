"""The service-free parts of task definitions: responses, the runtime's time budget, argument checks."""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from celery_bgtask import ErrorInfo, TaskValidationError
from celery_bgtask.definitions import build_definition
from celery_bgtask.responses import Aborted, Continue, Done, Error, TaskResponse
from celery_bgtask.runtime import TaskRuntime, default_margin


def _run(ctx: Any) -> Any:
    return None


class Page(BaseModel):
    offset: int
    size: int = 10


def test_responses_are_plain_values() -> None:
    r = TaskResponse()
    assert r.done({"n": 1}) == Done({"n": 1})
    assert r.continue_({"offset": 5}, wait=timedelta(milliseconds=250)) == Continue({"offset": 5}, 0.25)
    assert r.continue_() == Continue({}, None)
    assert r.aborted() == Aborted()
    assert r.error(ValueError("x")).error.name == "ValueError"
    assert r.error("plain message") == Error(ErrorInfo(name="TaskError", message="plain message"))
    assert r.error({"name": "Remote", "message": "503"}).error == ErrorInfo(name="Remote", message="503")


@pytest.mark.parametrize("bad", [["offset"], "offset=1", 3])
def test_continue_rejects_a_patch_that_is_not_a_dict(bad: Any) -> None:
    with pytest.raises(TaskValidationError, match="input_patch"):
        TaskResponse().continue_(bad)


@pytest.mark.parametrize("bad", [-1, "1", True, math.inf, math.nan, 2**80, timedelta.max, 3_155_760_001])
def test_continue_rejects_a_bad_wait(bad: Any) -> None:
    with pytest.raises(TaskValidationError, match="wait"):
        TaskResponse().continue_({}, wait=bad)


def test_runtime_without_a_limit_is_never_close_to_timeout() -> None:
    runtime = TaskRuntime(lambda: False, None)
    assert runtime.remaining_seconds() is None
    assert runtime.is_close_to_timeout() is False and runtime.is_close_to_timeout(3600) is False


def test_runtime_measures_against_the_soft_limit_from_the_start() -> None:
    started = time.monotonic() - 95  # as if this iteration began 95 s ago
    runtime = TaskRuntime(lambda: False, 100, started=started)
    remaining = runtime.remaining_seconds()
    assert remaining is not None and remaining <= 5
    assert runtime.is_close_to_timeout()  # default margin for 100 s is 10 s
    assert not runtime.is_close_to_timeout(seconds=1)
    assert default_margin(1) == pytest.approx(0.1) and default_margin(900) == 10


def test_runtime_abort_flag_is_read_sparingly_and_sticks() -> None:
    reads: list[int] = []
    answers = iter([False, True])

    def read() -> bool:
        reads.append(1)
        return next(answers)

    runtime = TaskRuntime(read, None, poll=3600)
    assert runtime.is_aborted() is False
    assert runtime.is_aborted() is False  # within the poll interval: no second read
    assert len(reads) == 1
    runtime._last_read = float("-inf")
    assert runtime.is_aborted() is True
    assert runtime.is_aborted() is True and len(reads) == 2


def test_definition_defaults_and_input_parsing() -> None:
    d = build_definition(_run, id="syncArticles", title=None, input_model=Page)
    assert (d.title, d.max_iterations, d.private, d.retain_for) == ("syncArticles", 500, False, None)
    assert d.parse_input({"offset": 3}) == Page(offset=3)
    with pytest.raises(TaskValidationError) as err:
        d.parse_input({"offset": "x", "size": "y"})
    assert "offset" in err.value.rule and "size" in err.value.rule
    plain = build_definition(_run, id="plain")
    assert plain.parse_input(None) == {}
    with pytest.raises(TaskValidationError, match="input: must be a dict"):
        plain.parse_input([1, 2])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "  "),
        ("title", ""),
        ("max_iterations", "500"),
        ("max_iterations", True),
        ("input_model", dict),
        ("private", "yes"),
        ("retain_for", -2),
        ("soft_time_limit", 0),
        ("on_error", 42),
        ("description", 5),
    ],
)
def test_definition_arguments_are_checked(field: str, value: Any) -> None:
    fields: dict[str, Any] = {"id": "ok", field: value}
    with pytest.raises(TaskValidationError, match=field):
        build_definition(_run, **fields)
