"""Trigger arithmetic and callback references of the scheduler, without a database."""

from __future__ import annotations

import pytest

from celery_bgtask import ScheduledTaskTime, TaskValidationError
from celery_bgtask.models import interval_ms
from celery_bgtask.scheduling.callbacks import callback_ref, resolve
from celery_bgtask.scheduling.times import next_after, plan_times
from tests.integration import scheduled_jobs

MINUTE = 60_000


def test_intervals_add_up_in_exact_milliseconds() -> None:
    assert interval_ms(None, None, None) is None
    assert interval_ms(1, None, None) == 86_400_000
    assert interval_ms(1, 2, 3) == ((24 + 2) * 60 + 3) * MINUTE
    assert ScheduledTaskTime(interval_hours=2, interval_minutes=30).interval_ms == 150 * MINUTE


@pytest.mark.parametrize(
    ("trigger", "every", "now", "expected"),
    [
        (1_000, None, 5_000, None),  # a one-off has no next trigger
        (1_000, MINUTE, 1_000, 1_000 + MINUTE),  # on time: previous plus interval
        (1_000, MINUTE, 1_000 + MINUTE - 1, 1_000 + MINUTE),
        (1_000, MINUTE, 1_000 + MINUTE, 1_000 + 2 * MINUTE),  # exactly on a grid time: that one is not future
        (1_000, MINUTE, 1_000 + 10 * MINUTE + 5, 1_000 + 11 * MINUTE),  # ten missed: the next future grid time
    ],
)
def test_next_after_stays_on_the_grid_and_lies_in_the_future(
    trigger: int, every: int | None, now: int, expected: int | None
) -> None:
    assert next_after(trigger, every, now) == expected
    if expected is not None:
        assert expected > now and (expected - trigger) % (every or 1) == 0


def test_plan_times_resolves_a_missing_trigger_to_one_interval_from_now() -> None:
    planned = plan_times([{"intervalMinutes": 15}, ScheduledTaskTime(next_trigger_time=7)], now=1_000)
    assert [p.next_trigger_time for p in planned] == [1_000 + 15 * MINUTE, 7]
    assert [p.interval_ms for p in planned] == [15 * MINUTE, None]


def test_plan_times_names_the_index_and_the_camel_case_field() -> None:
    with pytest.raises(TaskValidationError) as err:
        plan_times([{"intervalDays": 1}, {"interval_hours": 0}], now=0)
    assert err.value.field == "times[1].intervalHours"
    assert err.value.rule == "must be an int >= 1, got 0"


def test_callback_references_round_trip_to_the_same_callable() -> None:
    ref = callback_ref(scheduled_jobs.nightly)
    assert ref == "function:tests.integration.scheduled_jobs:nightly"
    assert resolve(ref) is scheduled_jobs.nightly
    assert resolve(callback_ref("tests.integration.scheduled_jobs:Jobs.static_job")) is scheduled_jobs.Jobs.static_job
    assert callback_ref(scheduled_jobs.celery_job) == "celery-task:tests.integration.scheduled_jobs.celery_job"
    assert resolve(callback_ref(scheduled_jobs.celery_job)) == "tests.integration.scheduled_jobs.celery_job"


def test_a_function_defined_in_main_is_refused() -> None:
    def stand_in() -> None:
        pass

    stand_in.__module__ = "__main__"
    stand_in.__qualname__ = "stand_in"
    with pytest.raises(TaskValidationError) as err:
        callback_ref(stand_in)
    assert "defined in __main__" in str(err.value)
