"""Cron and seconds times, DST in Europe/Berlin, and pause/resume, on every backend.

Each tick is ``fire_due(now)`` with an injected clock, so a DST change, a day or a pause
is walked through minute by minute without waiting for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from celery_bgtask import SCHEDULED_TYPE, ScheduledTaskTime, TaskSchedulerComponent, TaskValidationError
from tests.integration import scheduled_jobs

MINUTE = 60_000
BERLIN = "Europe/Berlin"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def utc(at: int) -> str:
    return datetime.fromtimestamp(at / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def triggers(sched: TaskSchedulerComponent, schedule_id: str) -> list[str]:
    """The triggers the schedule's firing records stand for, in UTC, oldest first."""
    page = sched.background.query(task_type=SCHEDULED_TYPE, limit=1000)
    return sorted(utc(t.payload["triggerTime"]) for t in page.entities if t.payload["scheduleId"] == schedule_id)


class Clock:
    """The scheduler component's clock, set by the test (``fire_due`` takes its own ``now``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at = 0
        monkeypatch.setattr("celery_bgtask.scheduler.now_ms", lambda: self.at)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def walk(sched: TaskSchedulerComponent, start: int, end: int, step: int = MINUTE) -> None:
    """Tick every ``step`` from ``start`` to ``end`` (epoch ms), as a beat would."""
    for at in range(start, end + 1, step):
        sched.fire_due(at)


def test_spring_forward_a_missing_local_time_fires_once_at_the_next_valid_minute(
    make_scheduler: Any, clock: Clock
) -> None:
    # 2026-03-29: Berlin goes from 02:00 CET to 03:00 CEST (01:00 UTC); 02:00-02:59 does not exist.
    sched = make_scheduler()
    now = clock.at = ms("2026-03-28T20:00:00+00:00")
    sched.add_task("gap", [{"cron": "30 2 * * *", "timezone": BERLIN, "nextTriggerTime": None}], scheduled_jobs.nightly)
    sched.add_task("quarter", [{"cron": "*/15 2-3 * * *", "timezone": BERLIN}], scheduled_jobs.nightly)
    sched.add_task("nine", [{"cron": "0 9 * * *", "timezone": BERLIN}], scheduled_jobs.nightly)
    walk(sched, now, ms("2026-03-30T09:00:00+00:00"), 5 * MINUTE)
    # 02:30 does not exist: fired at 03:00 CEST = 01:00 UTC; the next day at 02:30 CEST.
    assert triggers(sched, "gap") == ["2026-03-29T01:00", "2026-03-30T00:30"]
    # 02:00, 02:15, 02:30, 02:45 all fall in the gap: one firing at 03:00, then 03:15...
    assert triggers(sched, "quarter")[:5] == [
        "2026-03-29T01:00", "2026-03-29T01:15", "2026-03-29T01:30", "2026-03-29T01:45", "2026-03-30T00:00",
    ]
    # 09:00 local both days: 08:00 UTC in winter time, 07:00 UTC in summer time.
    assert triggers(sched, "nine") == ["2026-03-29T07:00", "2026-03-30T07:00"]


def test_fall_back_a_doubled_local_time_fires_once_at_its_first_occurrence(
    make_scheduler: Any, clock: Clock
) -> None:
    # 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET (01:00 UTC); 02:00-02:59 occurs twice.
    sched = make_scheduler()
    now = clock.at = ms("2026-10-24T19:59:00+00:00")
    sched.add_task("twice", [{"cron": "30 2 * * *", "timezone": BERLIN}], scheduled_jobs.nightly)
    sched.add_task("hourly", [{"cron": "0 * * * *", "timezone": BERLIN}], scheduled_jobs.nightly)
    walk(sched, now, ms("2026-10-25T04:00:00+00:00"), MINUTE)
    # 02:30 CEST = 00:30 UTC fires; 02:30 CET (01:30 UTC) does not fire again.
    assert triggers(sched, "twice") == ["2026-10-25T00:30"]
    # Local hours 22, 23, 0, 1, 2 (CEST), 3, 4, 5 (CET): the second 02:00 (CET) is skipped.
    assert triggers(sched, "hourly") == [
        "2026-10-24T20:00", "2026-10-24T21:00", "2026-10-24T22:00", "2026-10-24T23:00", "2026-10-25T00:00",
        "2026-10-25T02:00", "2026-10-25T03:00", "2026-10-25T04:00",
    ]


def test_interval_seconds_fire_on_a_grid_of_seconds(make_scheduler: Any) -> None:
    sched = make_scheduler()
    start = ms("2026-05-01T12:00:00+00:00")
    sched.add_task("five", [{"nextTriggerTime": start, "intervalSeconds": 5}], scheduled_jobs.nightly)
    walk(sched, start, start + 20_000, 1000)
    page = sched.background.query(task_type=SCHEDULED_TYPE, limit=100)
    assert sorted(t.payload["triggerTime"] - start for t in page.entities) == [0, 5000, 10000, 15000, 20000]
    assert sched.tasks_info().tasks["five"][0].next_trigger_time == start + 25_000


def test_a_paused_schedule_does_not_fire_and_resumes_on_its_grid_without_catching_up(
    make_scheduler: Any, clock: Clock
) -> None:
    sched = make_scheduler()
    start = ms("2026-05-01T12:00:00+00:00")
    sched.add_task("tick", [{"nextTriggerTime": start, "intervalMinutes": 1}], scheduled_jobs.nightly)
    walk(sched, start, start + 2 * MINUTE)
    assert sched.pause_task("tick") is True
    assert sched.tasks_info().tasks["tick"][0].paused is True
    walk(sched, start + 3 * MINUTE, start + 10 * MINUTE)
    assert len(triggers(sched, "tick")) == 3
    clock.at = start + 10 * MINUTE + 30_000
    assert sched.resume_task("tick") is True
    (listed,) = sched.tasks_info().tasks["tick"]
    assert (listed.paused, listed.next_trigger_time) == (None, start + 11 * MINUTE)
    walk(sched, start + 10 * MINUTE + 30_000, start + 12 * MINUTE + 30_000)
    assert triggers(sched, "tick") == [utc(start + k * MINUTE) for k in (0, 1, 2, 11, 12)]
    assert sched.pause_task("missing") is False
    assert sched.resume_task("missing") is False


def test_cron_times_are_listed_and_their_twin_json_round_trips(make_scheduler: Any) -> None:
    sched = make_scheduler()
    sched.add_task("c", [ScheduledTaskTime(cron="0 9 * * 1-5", timezone=BERLIN)], scheduled_jobs.nightly)
    (listed,) = sched.tasks_info().tasks["c"]
    assert (listed.cron, listed.timezone) == ("0 9 * * 1-5", BERLIN)
    assert listed.next_trigger_time is not None
    twin = {"nextTriggerTime": 1_700_000_000_000, "intervalDays": 1, "intervalMinutes": 5}
    dumped = ScheduledTaskTime.model_validate(twin).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped == twin


@pytest.mark.parametrize(
    ("time", "field", "rule"),
    [
        ({"cron": "0 9 * *"}, "times[0].cron", "must have 5 fields"),
        ({"cron": "61 9 * * *"}, "times[0].cron", "is not a valid crontab"),
        ({"cron": 5}, "times[0].cron", "must be a str"),
        ({"cron": "0 9 * * *", "intervalHours": 1}, "times[0].cron", "either an interval or a cron"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "times[0].timezone", "not a known IANA time zone"),
        ({"timezone": BERLIN, "intervalHours": 1}, "times[0].timezone", "applies to a cron time only"),
        ({"intervalSeconds": 0}, "times[0].intervalSeconds", "must be an int >= 1"),
        ({"intervalSeconds": "5"}, "times[0].intervalSeconds", "must be an int >= 1"),
    ],
)
def test_bad_cron_and_seconds_times_are_refused_and_nothing_is_written(
    make_scheduler: Any, time: dict[str, Any], field: str, rule: str
) -> None:
    sched = make_scheduler()
    with pytest.raises(TaskValidationError) as raised:
        sched.add_task("bad", [time], scheduled_jobs.nightly)
    assert raised.value.field == field
    assert rule in str(raised.value)
    assert "bad" not in sched.tasks_info().tasks
