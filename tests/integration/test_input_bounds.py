"""Issue 14, numbers: every duration and count a caller hands in is bounded so that it fits
its column on each backend and reads back; anything outside is a ``TaskValidationError``
naming the field, and nothing is written. (Text and JSON: ``test_input_text``.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from celery_bgtask import (
    BackgroundTaskComponent,
    TaskContext,
    TaskSchedulerComponent,
    TaskStatus,
    TaskValidationError,
)
from celery_bgtask.limits import (
    MAX_DURATION_MS,
    MAX_DURATION_SECONDS,
    MAX_INSTANT_MS,
    MAX_ITERATIONS,
    MAX_RETRY_COUNT,
    MAX_RETRY_INTERVAL_MS,
    MAX_WORKER_COUNT,
)
from celery_bgtask.timeutil import now_ms
from tests.helpers import readable, refused, status_of, wait_for
from tests.integration import scheduled_jobs

H = "tests.integration.handlers"


# -- durations and counts -----------------------------------------------------------------
@pytest.mark.parametrize("value", [10**15, 2**63 - 1, MAX_DURATION_MS + 1, timedelta.max, timedelta(days=36_526)])
def test_retain_for_beyond_100_years_is_refused(bg: BackgroundTaskComponent, value: Any) -> None:
    refused(bg, "retain_for", lambda: bg.create("x", {}, retain_for=value))
    refused(bg, "payloads[0].retain_for", lambda: bg.create_many("x", [{}], retain_for=value))


def test_retain_for_of_100_years_is_kept_and_reads_back_after_cancel(bg: BackgroundTaskComponent) -> None:
    urn = bg.create("x", {}, retain_for=MAX_DURATION_MS)
    assert bg.cancel(urn)
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.date_retain_until is not None and task.date_cancelled is not None
    assert task.date_retain_until.year == task.date_cancelled.year + 100


@pytest.mark.parametrize(("field", "value"), [
    ("retry_count", 2**31), ("retry_count", MAX_RETRY_COUNT + 1), pytest.param("retry_count", 10**5000, id="10**5000"),
    ("retry_interval", 2**31), ("retry_interval", 2**63 - 1), ("retry_interval", MAX_RETRY_INTERVAL_MS + 1),
    ("retry_interval", timedelta.max), ("retry_interval", timedelta(days=25)),
])
def test_counts_and_intervals_beyond_their_columns_are_refused(bg: BackgroundTaskComponent, field: str,
                                                               value: Any) -> None:
    error = refused(bg, field, lambda: bg.create("x", {}, **{field: value}))
    assert "at most" in error.rule


def test_the_largest_count_and_interval_are_stored_on_every_backend(bg: BackgroundTaskComponent) -> None:
    urn = bg.create("x", {}, retry_count=MAX_RETRY_COUNT, retry_interval=MAX_RETRY_INTERVAL_MS)
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and (task.retries_remaining, task.retry_interval) == (MAX_RETRY_COUNT,
                                                                                  MAX_RETRY_INTERVAL_MS)


@pytest.mark.parametrize(("name", "value"), [
    ("default_retry_interval", 2**31), ("default_retain_for", 10**15), ("cleanup_interval", 2**63),
    ("lease", timedelta.max), ("poll_interval", 10**20), ("redeliver_after", MAX_DURATION_MS + 1),
])
def test_component_settings_beyond_100_years_or_their_column_are_refused(
    make_component: Callable[..., BackgroundTaskComponent], name: str, value: Any
) -> None:
    with pytest.raises(TaskValidationError) as info:
        make_component(**{name: value})
    assert info.value.field == name and "at most" in info.value.rule


def test_retry_count_zero_means_no_retries_like_none(bg: BackgroundTaskComponent) -> None:
    zero, none = bg.get(bg.create("x", {}, retry_count=0)), bg.get(bg.create("x", {}))
    assert zero is not None and none is not None
    assert (zero.retries_remaining, zero.retry_interval) == (none.retries_remaining, none.retry_interval) == (None,
                                                                                                             None)
    assert [bg.get(u).retries_remaining for u in bg.create_many("x", [1, 2], retry_count=0)] == [None, None]  # type: ignore[union-attr]


def test_retry_count_zero_fails_at_the_first_failure(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("boom", H, "boom")
    urn = bg.create("boom", {}, retry_count=0, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="a final failure")
    task = bg.get(urn)
    assert task is not None and task.retries_remaining is None and task.error is not None
    assert task.error.message == "boom"


@pytest.mark.parametrize("delay", [math.inf, -math.inf, math.nan, 2**80, MAX_DURATION_SECONDS + 1, timedelta.max, -1])
def test_trigger_delay_must_be_finite_and_at_most_100_years(bg: BackgroundTaskComponent, delay: Any) -> None:
    @bg.definition(id="later")
    def later(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    refused(bg, "delay", lambda: bg.trigger("later", {}, delay=delay))
    refused(bg, "retain_for", lambda: bg.trigger("later", {}, retain_for=10**15))
    urn = bg.trigger("later", {}, delay=MAX_DURATION_SECONDS)
    readable(bg, urn)


@pytest.mark.parametrize(("field", "value"), [
    ("max_iterations", 2**31), ("max_iterations", MAX_ITERATIONS + 1), ("soft_time_limit", math.inf),
    ("soft_time_limit", 10**20), ("retain_for", 2**63 - 1),
])
def test_definition_options_are_bounded(bg: BackgroundTaskComponent, field: str, value: Any) -> None:
    with pytest.raises(TaskValidationError) as info:
        bg.definition(id="bounded", **{field: value})(lambda ctx: None)
    assert info.value.field == field
    assert bg.get_definition("bounded") is None


@pytest.mark.parametrize("options", [{"max_worker_count": 2**31}, {"max_worker_count": MAX_WORKER_COUNT + 1},
                                     {"idle_shutdown_timeout": 2**63}])
def test_handler_options_are_bounded(bg: BackgroundTaskComponent, options: dict[str, Any]) -> None:
    with pytest.raises(TaskValidationError) as info:
        bg.register_handler("opts", H, "echo", options=options)
    assert info.value.field == "options"
    assert bg.handler("opts") is None


# -- schedules ------------------------------------------------------------------------------
@pytest.mark.parametrize(("time", "field"), [
    ({"intervalMinutes": 2**50}, "times[0].intervalMinutes"),
    ({"intervalHours": 2**31}, "times[0].intervalHours"),
    ({"intervalDays": 36_526}, "times[0].intervalDays"),
    ({"nextTriggerTime": 2**63}, "times[0].nextTriggerTime"),
    ({"nextTriggerTime": MAX_INSTANT_MS + 1, "intervalDays": 1}, "times[0].nextTriggerTime"),
    ({"intervalDays": 36_525, "intervalMinutes": 1}, "times[0]"),
])
def test_schedule_times_beyond_their_bounds_are_refused(bg: BackgroundTaskComponent, sched: TaskSchedulerComponent,
                                                         time: dict[str, int], field: str) -> None:
    refused(bg, field, lambda: sched.add_task("big", [time], scheduled_jobs.nightly))
    assert sched.tick().fired == []  # the beat still ticks


def test_the_longest_schedule_interval_fires_and_moves_on(bg: BackgroundTaskComponent,
                                                          sched: TaskSchedulerComponent) -> None:
    now = now_ms()
    sched.add_task("century", [{"nextTriggerTime": now - 1, "intervalDays": 36_525}], scheduled_jobs.nightly)
    assert len(sched.tick().fired) == 1
    [time] = sched.tasks_info().tasks["century"]
    assert time.next_trigger_time == now - 1 + MAX_DURATION_MS
