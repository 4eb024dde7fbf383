"""``beat_schedule`` entries kept in the database: conversion, the upsert beats agree on,
removal after the lease, and the entries refused (on every backend; the clock is injected)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery.schedules import crontab, schedule, solar

from celery_bgtask import SCHEDULED_TYPE, TaskSchedulerComponent, TaskValidationError
from celery_bgtask.scheduling.entries import crontab_text, entries_of
from tests.integration import scheduled_jobs

TASK = "tests.integration.scheduled_jobs.entry_job"
LEASE = 120_000
NOW = 1_800_000_000_000


class Sunset(solar):
    """A solar schedule as beat_schedule would hold one (a real one needs the ephem package)."""

    def __init__(self) -> None:
        pass


def sync(sched: TaskSchedulerComponent, beat_schedule: dict[str, Any], now: int, tz: str | None = None) -> list[str]:
    return sched.sync_entries(entries_of(beat_schedule, tz), LEASE, now)


def test_entries_become_schedules_and_a_second_beat_keeps_their_triggers(make_scheduler: Any) -> None:
    sched = make_scheduler()
    conf = {"every-5s": {"task": TASK, "schedule": timedelta(seconds=5)},
            "nine": {"task": TASK, "schedule": crontab(hour=9, minute=0), "args": [1]},
            "number": {"task": TASK, "schedule": 30.0},
            "wrapped": {"task": TASK, "schedule": schedule(timedelta(minutes=2))}}
    sync(sched, conf, NOW, "Europe/Berlin")
    first = sched.tasks_info().tasks
    assert first["every-5s"][0].interval_seconds == 5 and first["every-5s"][0].next_trigger_time == NOW + 5000
    assert (first["nine"][0].cron, first["nine"][0].timezone) == ("0 9 * * *", "Europe/Berlin")
    assert first["number"][0].interval_seconds == 30 and first["wrapped"][0].interval_seconds == 120
    # Another beat starting later with the same configuration changes nothing.
    sync(sched, conf, NOW + 3000, "Europe/Berlin")
    assert sched.tasks_info().tasks == first
    # A changed entry is replaced: a new first trigger from the new schedule.
    sync(sched, {**conf, "every-5s": {"task": TASK, "schedule": timedelta(seconds=7)}}, NOW + 4000, "Europe/Berlin")
    assert sched.tasks_info().tasks["every-5s"][0].next_trigger_time == NOW + 11_000


def test_an_entry_fires_once_per_trigger_however_many_beats_tick(make_scheduler: Any) -> None:
    sched = make_scheduler()
    other = TaskSchedulerComponent(sched.app)  # a second beat's component on the same database
    conf = {"every-5s": {"task": TASK, "schedule": timedelta(seconds=5)}}
    sync(sched, conf, NOW)
    sync(other, conf, NOW + 1)
    for at in range(NOW, NOW + 20_001, 1000):
        sched.fire_due(at)
        other.fire_due(at)
    page = sched.background.query(task_type=SCHEDULED_TYPE, limit=100)
    assert sorted(t.payload["triggerTime"] - NOW for t in page.entities) == [5000, 10_000, 15_000, 20_000]


def test_a_removed_entry_stops_once_no_beat_has_synced_it_for_the_lease(make_scheduler: Any) -> None:
    sched = make_scheduler()
    both = {"a": {"task": TASK, "schedule": 10}, "b": {"task": TASK, "schedule": 10}}
    sync(sched, both, NOW)                       # an old beat has a and b
    assert sync(sched, {"a": both["a"]}, NOW + 1000) == []  # a new beat has only a: b stays (the old one runs)
    sync(sched, both, NOW + 30_000)              # the old beat syncs again
    assert sync(sched, {"a": both["a"]}, NOW + 30_000 + LEASE - 1) == []
    assert sync(sched, {"a": both["a"]}, NOW + 30_000 + LEASE + 1) == ["b"]  # the old beat stopped syncing
    assert sorted(sched.tasks_info().tasks) == ["a"]


def test_an_add_task_schedule_of_the_same_name_is_left_alone(make_scheduler: Any, caplog: Any) -> None:
    sched = make_scheduler()
    sched.add_task("mine", [{"intervalMinutes": 1}], scheduled_jobs.nightly)
    before = sched.tasks_info().tasks["mine"]
    sync(sched, {"mine": {"task": TASK, "schedule": 10}}, NOW)
    assert sched.tasks_info().tasks["mine"] == before
    assert "a schedule added with add_task has that name" in caplog.text


def test_crontab_text_is_the_five_fields_of_the_expanded_sets() -> None:
    assert crontab_text(crontab()) == "* * * * *"
    assert crontab_text(crontab(minute="*/15", hour="9-17", day_of_week="mon-fri")) == "0,15,30,45 9-17 * * 1-5"


@pytest.mark.parametrize(
    ("entry", "field", "rule"),
    [
        ({"task": TASK, "schedule": Sunset()}, "beat_schedule['x'].schedule", "solar schedules"),
        ({"task": TASK, "schedule": 0.5}, "beat_schedule['x'].schedule", "whole number of seconds >= 1"),
        ({"task": TASK, "schedule": "5"}, "beat_schedule['x'].schedule", "must be a timedelta"),
        ({"task": "os.system", "schedule": 5}, "beat_schedule['x'].task", "the module 'os' are refused"),
        ({"task": "", "schedule": 5}, "beat_schedule['x'].task", "must name a Celery task"),
        ({"task": TASK, "schedule": 5, "kwargs": {"f": {1, 2}}}, "beat_schedule['x'].kwargs", ""),
        ({"task": TASK, "schedule": 5, "args": "ab"}, "beat_schedule['x'].args", "must be a list or tuple"),
    ],
)
def test_bad_entries_are_refused_naming_the_entry_and_the_rule(entry: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(TaskValidationError) as raised:
        entries_of({"x": entry}, None)
    assert raised.value.field == field
    assert rule in str(raised.value)
