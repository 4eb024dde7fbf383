"""TaskSchedulerComponent on every backend: schedules, validation, firing, and the beat scheduler.

The firing tests call ``fire_due`` (one beat tick) with an explicit clock, which is how
missed triggers and a DST change are exercised without waiting for them. The beat tests
run the real ``celery.beat.Service`` with our ``Scheduler`` in a thread, beside a real
in-process worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.beat import EmbeddedService
from sqlalchemy import select
from sqlalchemy.engine import make_url

from celery_bgtask import (
    SCHEDULED_TYPE,
    BgTaskError,
    ScheduledTaskInfo,
    ScheduledTaskTime,
    TaskSchedulerComponent,
    TaskStatus,
    TaskValidationError,
)
from celery_bgtask.beat import Scheduler
from celery_bgtask.celery import runner_of
from celery_bgtask.scheduler import scheduler_of
from celery_bgtask.store.schema import tasks
from celery_bgtask.timeutil import dt_to_ms, now_ms
from tests.helpers import wait_for
from tests.integration import scheduled_jobs
from tests.tcpproxy import TcpProxy

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    scheduled_jobs.calls.clear()


def firings(sched: TaskSchedulerComponent) -> list[Any]:
    """Every firing record, oldest first."""
    page = sched.background.query(task_type=SCHEDULED_TYPE, limit=1000)
    return page.entities


def payloads(sched: TaskSchedulerComponent) -> list[tuple[str, int]]:
    return sorted((t.payload["scheduleId"], t.payload["triggerTime"]) for t in firings(sched))


# -- schedules ------------------------------------------------------------------------
def test_seed_schedule_round_trips_through_tasks_info(make_scheduler: Any) -> None:
    sched = make_scheduler()
    first = now_ms() + 15 * MINUTE
    sched.add_task("daily-sync", [ScheduledTaskTime(next_trigger_time=first, interval_days=1)], scheduled_jobs.nightly)
    info = sched.tasks_info()
    assert isinstance(info, ScheduledTaskInfo)
    assert len(info.tasks["daily-sync"]) == 1
    assert info.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "tasks": {"daily-sync": [{"nextTriggerTime": first, "intervalDays": 1}]}
    }


def test_dicts_in_either_case_and_a_missing_trigger_fires_one_interval_from_now(make_scheduler: Any) -> None:
    sched = make_scheduler()
    before = now_ms()
    sched.add_task(
        "cleanup-cache",
        [{"intervalMinutes": 15}, {"next_trigger_time": 1_000, "interval_hours": 2, "interval_days": 1}],
        "tests.integration.scheduled_jobs:other",
    )
    after = now_ms()
    quarter, daily = sched.tasks_info().tasks["cleanup-cache"]
    assert quarter.interval_minutes == 15 and quarter.next_trigger_time is not None
    assert before + 15 * MINUTE <= quarter.next_trigger_time <= after + 15 * MINUTE
    assert daily == ScheduledTaskTime(next_trigger_time=1_000, interval_days=1, interval_hours=2)


def test_adding_an_existing_id_replaces_its_times_and_callback(make_scheduler: Any) -> None:
    sched = make_scheduler()
    now = now_ms()
    later = [{"nextTriggerTime": now + HOUR}, {"nextTriggerTime": now + 2 * HOUR}]
    sched.add_task("report", later, scheduled_jobs.nightly)
    sched.add_task("report", [{"nextTriggerTime": now - 1}], scheduled_jobs.other)
    assert sched.tasks_info().tasks == {"report": [ScheduledTaskTime(next_trigger_time=now - 1)]}
    fired = sched.fire_due(now)
    assert len(fired) == 1
    assert firings(sched)[0].payload["callback"] == "function:tests.integration.scheduled_jobs:other"


def test_remove_task_deletes_the_schedule_so_it_never_fires(make_scheduler: Any) -> None:
    sched = make_scheduler()
    now = now_ms()
    sched.add_task("gone", [{"nextTriggerTime": now - 1, "intervalMinutes": 1}], scheduled_jobs.nightly)
    sched.add_task("kept", [{"nextTriggerTime": now - 1}], scheduled_jobs.nightly)
    assert sched.remove_task("gone") is True
    assert sched.remove_task("gone") is False
    assert list(sched.tasks_info().tasks) == ["kept"]
    sched.fire_due(now + DAY)
    assert [p[0] for p in payloads(sched)] == ["kept"]


def test_static_methods_and_celery_tasks_are_accepted_callbacks(make_scheduler: Any) -> None:
    sched = make_scheduler()
    sched.add_task("a", [{"intervalDays": 1}], scheduled_jobs.Jobs.static_job)
    sched.add_task("b", [{"intervalDays": 1}], scheduled_jobs.celery_job)
    sched.add_task("c", [{"intervalDays": 1}], "tests.integration.scheduled_jobs:celery_job")
    assert sorted(sched.tasks_info().tasks) == ["a", "b", "c"]


BAD_TIMES = [
    ([], "times: must hold at least one time"),
    ("every day", "times: must be a list"),
    ({"intervalDays": 1}, "times: must be a list"),
    ([{"intervalMinutes": 0}], "times[0].intervalMinutes: must be an int >= 1, got 0"),
    ([{"intervalHours": -2}], "times[0].intervalHours: must be an int >= 1, got -2"),
    ([{"intervalDays": 1.5}], "times[0].intervalDays: must be an int >= 1, got 1.5 (float)"),
    ([{"intervalDays": "1"}], "times[0].intervalDays: must be an int >= 1, got '1' (str)"),
    ([{"interval_minutes": True}], "times[0].intervalMinutes: must be an int >= 1, got True (bool)"),
    ([{"nextTriggerTime": -5}], "times[0].nextTriggerTime: must be an int >= 0, got -5"),
    ([{"nextTriggerTime": 1.0}], "times[0].nextTriggerTime: must be an int >= 0, got 1.0 (float)"),
    ([{"nextTriggerTime": 5, "intervalMinutes": 5}, {}], "times[1]: needs a nextTriggerTime or an interval"),
    ([{"everyMinutes": 5}], "times[0].everyMinutes: is not a field of a time"),
    ([{"intervalDays": 1, "interval_days": 2}], "times[0].intervalDays: is given twice"),
    ([42], "times[0]: must be a ScheduledTaskTime or a dict, got int"),
]


@pytest.mark.parametrize(("times", "message"), BAD_TIMES)
def test_bad_times_raise_naming_the_field_and_write_nothing(make_scheduler: Any, times: Any, message: str) -> None:
    sched = make_scheduler()
    sched.add_task("keep", [{"nextTriggerTime": 123, "intervalDays": 1}], scheduled_jobs.nightly)
    before = sched.tasks_info()
    with pytest.raises(TaskValidationError) as err:
        sched.add_task("keep", times, scheduled_jobs.other)
    assert message in str(err.value)
    with pytest.raises(TaskValidationError):
        sched.add_task("new", times, scheduled_jobs.other)
    assert sched.tasks_info() == before


BAD_CALLBACKS = [
    (lambda: None, "a lambda cannot be imported by a worker"),
    (scheduled_jobs.make_closure(), "a closure cannot be imported by a worker"),
    (scheduled_jobs.Jobs().run, "does not import by name"),
    ("nightly", "must be 'module:function'"),
    ("tests.integration.scheduled_jobs.nightly", "must be 'module:function'"),
    ("tests.integration.scheduled_jobs:missing", "has no attribute 'missing'"),
    ("tests.integration.no_such_module:fn", "cannot import module 'tests.integration.no_such_module'"),
    ("tests.integration.scheduled_jobs:not_callable", "is not callable"),
    (42, "must be a function, a 'module:function' string or a Celery task, got int"),
    (None, "must be a function, a 'module:function' string or a Celery task, got NoneType"),
]


@pytest.mark.parametrize(("callback", "message"), BAD_CALLBACKS)
def test_callbacks_that_do_not_import_by_name_are_refused(make_scheduler: Any, callback: Any, message: str) -> None:
    sched = make_scheduler()
    with pytest.raises(TaskValidationError) as err:
        sched.add_task("nope", [{"intervalDays": 1}], callback)
    assert err.value.field == "task_callback"
    assert message in str(err.value)
    assert sched.tasks_info().tasks == {}


@pytest.mark.parametrize("task_id", ["", "   ", 7, None, "x" * 201])
def test_bad_task_ids_are_refused(make_scheduler: Any, task_id: Any) -> None:
    sched = make_scheduler()
    with pytest.raises(TaskValidationError) as err:
        sched.add_task(task_id, [{"intervalDays": 1}], scheduled_jobs.nightly)
    assert err.value.field == "task_id"
    with pytest.raises(TaskValidationError):
        sched.remove_task(task_id)
    assert sched.tasks_info().tasks == {}


# -- firing ---------------------------------------------------------------------------
def test_a_one_off_fires_once_then_stays_listed_with_no_next_trigger(make_scheduler: Any) -> None:
    sched = make_scheduler()
    now = now_ms()
    sched.add_task("once", [{"nextTriggerTime": now - 5}], scheduled_jobs.nightly)
    fired = sched.fire_due(now)
    assert len(fired) == 1
    (listed,) = sched.tasks_info().tasks["once"]
    assert listed.model_dump(include={"next_trigger_time", "interval_days", "interval_hours", "interval_minutes",
                                      "cron", "paused"}, exclude_none=True) == {}
    # Its last firing, outside TWIN's keys: when, which record, and the record's status.
    assert (listed.last_fired_at, listed.last_task_id, listed.last_status) == (now, fired[0], "pending")
    assert sched.fire_due(now + DAY) == []
    assert payloads(sched) == [("once", now - 5)]


def test_next_trigger_is_the_previous_trigger_plus_the_interval(make_scheduler: Any) -> None:
    sched = make_scheduler()
    trigger = now_ms() - 250
    sched.add_task("hourly", [{"nextTriggerTime": trigger, "intervalHours": 1}], scheduled_jobs.nightly)
    sched.fire_due(trigger + 200)
    assert sched.tasks_info().tasks["hourly"][0].next_trigger_time == trigger + HOUR


def test_missed_triggers_fire_once_then_move_to_the_next_future_grid_time(make_scheduler: Any) -> None:
    sched = make_scheduler()
    now = now_ms()
    trigger = now - 10 * MINUTE - 30_000  # beat was down for ten and a half intervals
    sched.add_task("every-minute", [{"nextTriggerTime": trigger, "intervalMinutes": 1}], scheduled_jobs.nightly)
    assert len(sched.fire_due(now)) == 1
    assert sched.fire_due(now) == []
    assert payloads(sched) == [("every-minute", trigger)]
    assert sched.tasks_info().tasks["every-minute"][0].next_trigger_time == trigger + 11 * MINUTE


def test_a_daily_schedule_across_a_dst_change_keeps_exact_24_hour_steps(
    make_scheduler: Any, celery_app_factory: Callable[..., Celery]
) -> None:
    """Europe/Berlin moves to summer time on 2026-03-29; epoch-ms intervals do not care."""
    berlin = ZoneInfo("Europe/Berlin")
    app = celery_app_factory(timezone="Europe/Berlin", enable_utc=False)
    sched = make_scheduler(app)
    first = dt_to_ms(datetime(2026, 3, 28, 9, 0, tzinfo=berlin))  # 08:00 UTC, winter time
    sched.add_task("berlin-daily", [{"nextTriggerTime": first, "intervalDays": 1}], scheduled_jobs.nightly)
    seen: list[int] = []
    clock = first
    for _ in range(3):
        sched.fire_due(clock)
        clock = sched.tasks_info().tasks["berlin-daily"][0].next_trigger_time or 0
        seen.append(clock)
    assert seen == [first + DAY, first + 2 * DAY, first + 3 * DAY]
    local = [datetime.fromtimestamp(ms / 1000, berlin).strftime("%d %H:%M %Z") for ms in seen]
    assert local == ["29 10:00 CEST", "30 10:00 CEST", "31 10:00 CEST"]  # the same UTC time of day

    hourly_first = dt_to_ms(datetime(2026, 3, 29, 0, 30, tzinfo=UTC))  # 01:30 local, before the gap
    sched.add_task("berlin-hourly", [{"nextTriggerTime": hourly_first, "intervalHours": 1}], scheduled_jobs.other)
    for step in range(3):  # 01:30 CET, then 03:30 and 04:30 CEST: one real hour apart each
        sched.fire_due(hourly_first + step * HOUR)
    hourly = sorted(t for s, t in payloads(sched) if s == "berlin-hourly")
    assert hourly == [hourly_first, hourly_first + HOUR, hourly_first + 2 * HOUR]
    assert [datetime.fromtimestamp(t / 1000, berlin).strftime("%H:%M") for t in hourly] == ["01:30", "03:30", "04:30"]


def test_two_beats_racing_on_the_same_due_times_fire_each_exactly_once(
    make_scheduler: Any, celery_app_factory: Callable[..., Celery]
) -> None:
    one = make_scheduler()
    two = make_scheduler(celery_app_factory())  # another app, engine and connection pool
    now = now_ms()
    for n in range(40):
        one.add_task(f"job-{n:02d}", [{"nextTriggerTime": now - n, "intervalMinutes": 5}, {"nextTriggerTime": now}],
                     scheduled_jobs.nightly)
    start = threading.Barrier(2)
    results: dict[str, list[str]] = {}

    def tick(name: str, sched: TaskSchedulerComponent) -> None:
        start.wait()
        results[name] = [urn for _ in range(3) for urn in sched.fire_due(now)]

    threads = [threading.Thread(target=tick, args=(n, s)) for n, s in (("one", one), ("two", two))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    fired = results["one"] + results["two"]
    assert len(fired) == len(set(fired)) == 80
    keys = [(t.payload["scheduleId"], t.payload["position"], t.payload["triggerTime"]) for t in firings(one)]
    assert len(keys) == len(set(keys)) == 80


def test_firing_records_follow_the_schedulers_retention(make_scheduler: Any) -> None:
    sched = make_scheduler(retain_for=0)
    now = now_ms()
    sched.add_task("short-lived", [{"nextTriggerTime": now - 1}], scheduled_jobs.nightly)
    (urn,) = sched.fire_due(now)
    record = sched.background.get(urn)
    assert record is not None and record.status is TaskStatus.PENDING
    with sched.background.engine.connect() as conn:
        assert conn.execute(select(tasks.c.retain_for).where(tasks.c.id == record.id)).scalar() == 0


# -- the beat, with a worker ------------------------------------------------------------
@contextmanager
def running_beat(app: Celery) -> Iterator[None]:
    """The real ``celery beat`` service with our scheduler, in a thread."""
    service = EmbeddedService(app, thread=True, scheduler_cls=Scheduler)
    service.start()
    try:
        yield
    finally:
        service.stop()
        service.join(15)
        assert not service.is_alive(), "beat did not stop"


def test_beat_fires_callbacks_on_a_worker_and_sees_changes_without_a_restart(
    make_scheduler: Any, celery_app_factory: Callable[..., Celery], worker: Any
) -> None:
    # A non-UTC Celery timezone must not shift triggers, which are epoch ms.
    app = celery_app_factory(timezone="America/New_York", bgtask_beat_poll_interval=200)
    sched = make_scheduler(app)
    with worker(app), running_beat(app):
        soon = now_ms() + 300
        sched.add_task("soon", [{"nextTriggerTime": soon}], scheduled_jobs.nightly)
        sched.add_task("celery", [{"nextTriggerTime": soon}], scheduled_jobs.celery_job)
        sched.add_task("explodes", [{"nextTriggerTime": soon}, {"nextTriggerTime": soon + 200}], scheduled_jobs.explode)
        sched.add_task("not-json", [{"nextTriggerTime": soon}], scheduled_jobs.not_json)
        sched.add_task("withdrawn", [{"nextTriggerTime": soon + 1500}], scheduled_jobs.other)
        sched.remove_task("withdrawn")
        sentinel = now_ms() + 2000  # due after "withdrawn" would have been
        sched.add_task("sentinel", [{"nextTriggerTime": sentinel}], scheduled_jobs.nightly)

        def settled() -> bool:
            records = firings(sched)
            return len(records) == 6 and all(r.status.is_terminal for r in records)

        wait_for(settled, timeout=30, what="six firings to finish")
        wait_for(lambda: scheduled_jobs.calls["celery_job"] == 1, what="the Celery task callback to run")

    by_schedule: dict[str, list[Any]] = {}
    for record in firings(sched):
        by_schedule.setdefault(record.payload["scheduleId"], []).append(record)
    assert sorted(by_schedule) == ["celery", "explodes", "not-json", "sentinel", "soon"]
    assert scheduled_jobs.calls == {"nightly": 2, "celery_job": 1, "explode": 2, "not_json": 1}
    assert "other" not in scheduled_jobs.calls  # removed before it came due
    (soon_run,) = by_schedule["soon"]
    assert soon_run.status is TaskStatus.SUCCESS and soon_run.result == {"run": 1}
    assert dt_to_ms(soon_run.date_created) >= soon  # never early
    assert by_schedule["celery"][0].status is TaskStatus.SUCCESS and "celeryTaskId" in by_schedule["celery"][0].result
    assert [r.status for r in by_schedule["explodes"]] == [TaskStatus.FAILED, TaskStatus.FAILED]
    assert by_schedule["explodes"][0].error is not None
    assert by_schedule["explodes"][0].error.name == "RuntimeError"
    assert by_schedule["explodes"][0].error.message == "the nightly export broke"
    assert by_schedule["not-json"][0].status is TaskStatus.SUCCESS and by_schedule["not-json"][0].result is None
    listed = sched.tasks_info().tasks["explodes"]
    assert [(t.next_trigger_time, t.last_status) for t in listed] == [(None, "failed")] * 2


@pytest.mark.parametrize("backend", ["postgres"])  # it proxies the database's TCP link
def test_a_database_outage_in_a_tick_is_logged_and_the_next_tick_fires(
    make_scheduler: Any, celery_app_factory: Callable[..., Celery], database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = make_url(database_url)
    observer = make_scheduler()
    now = now_ms()
    observer.add_task("through-outage", [{"nextTriggerTime": now - 1}], scheduled_jobs.nightly)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = celery_app_factory(bgtask_database_url=proxied, bgtask_beat_poll_interval=300)
        beat_scheduler = Scheduler(app)  # no component yet: it builds one from app.conf
        try:
            proxy.cut()
            caplog.set_level(logging.ERROR, logger="celery_bgtask.beat")
            assert beat_scheduler.tick() == pytest.approx(0.3)
            assert "beat on " in caplog.text and "the database is unavailable" in caplog.text
            assert payloads(observer) == []
            proxy.restore()
            beat_scheduler.tick()
            assert payloads(observer) == [("through-outage", now - 1)]
        finally:
            beat_scheduler.component.close()


def test_beat_schedule_entries_are_kept_in_the_database_and_fire_once_across_two_beats(
    make_scheduler: Any, celery_app_factory: Callable[..., Celery], worker: Any
) -> None:
    scheduled_jobs.entry_calls.clear()
    entry = {"task": "tests.integration.scheduled_jobs.entry_job", "schedule": timedelta(seconds=1),
             "args": [1, "two"], "kwargs": {"three": 3}, "options": {"priority": 5}}
    app = celery_app_factory(beat_schedule={"static-ping": entry}, bgtask_beat_poll_interval=200)
    sched = make_scheduler(app)
    with worker(app), running_beat(app), running_beat(app):
        sched.add_task("from-db", [{"nextTriggerTime": now_ms()}], scheduled_jobs.nightly)
        wait_for(lambda: len(scheduled_jobs.entry_calls) >= 3 and scheduled_jobs.calls["nightly"] == 1,
                 timeout=30, what="both kinds of schedule to run")
    (kept,) = sched.tasks_info().tasks["static-ping"]
    assert kept.interval_seconds == 1
    fired = [t for t in firings(sched) if t.payload["scheduleId"] == "static-ping"]
    wait_for(lambda: len(scheduled_jobs.entry_calls) == len(fired), what="every firing's task to run")
    # Two beats, one firing per trigger: the triggers are distinct and one second apart.
    triggers = sorted(t.payload["triggerTime"] for t in fired)
    assert len(set(triggers)) == len(triggers)
    assert all(b - a >= 1000 and (b - a) % 1000 == 0 for a, b in pairwise(triggers))
    assert scheduled_jobs.entry_calls[0] == ([1, "two"], {"three": 3})


def test_a_firing_whose_publish_failed_is_published_by_a_worker_sweeper(
    make_scheduler: Any, celery_app_factory: Callable[..., Celery], queue_name: str, worker: Any
) -> None:
    down = Celery("broker-down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    down.conf.update(task_default_queue=queue_name, broker_connection_timeout=0.5)
    beat_side = make_scheduler(down)
    now = now_ms()
    beat_side.add_task("while-the-broker-is-down", [{"nextTriggerTime": now - 1}], scheduled_jobs.nightly)
    (urn,) = beat_side.fire_due(now)  # committed, but its wake-up could not be sent
    record = beat_side.background.get(urn)
    assert record is not None and record.status is TaskStatus.PENDING
    with beat_side.background.engine.connect() as conn:
        assert conn.execute(select(tasks.c.enqueued_at).where(tasks.c.id == record.id)).scalar() is None
    worker_side = make_scheduler(celery_app_factory())
    with worker(worker_side.app):
        wait_for(lambda: worker_side.background.get(urn).status is TaskStatus.SUCCESS, what="the sweeper's publish")
    assert scheduled_jobs.calls["nightly"] == 1


def test_the_scheduler_shares_the_apps_component_and_refuses_another_database(
    make_component: Any, celery_app_factory: Callable[..., Celery], tmp_path: Any
) -> None:
    bg = make_component()
    sched = TaskSchedulerComponent(bg.app)
    assert sched.background is bg
    same_url = bg.engine.url.render_as_string(hide_password=False)
    assert TaskSchedulerComponent(bg.app, database_url=same_url).background is bg
    with pytest.raises(BgTaskError, match="database_url: this app's BackgroundTaskComponent uses"):
        TaskSchedulerComponent(bg.app, database_url=f"sqlite:///{tmp_path / 'other.sqlite3'}")
    with pytest.raises(BgTaskError, match="poll_interval: set these on the app's BackgroundTaskComponent"):
        TaskSchedulerComponent(bg.app, poll_interval=5)
    with pytest.raises(BgTaskError, match="component: it belongs to another Celery app"):
        TaskSchedulerComponent(celery_app_factory(), component=bg)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("retain_for", -2, "retain_for: must be an int >= -1, got -2"),
    ("retain_for", "1", "retain_for: must be an int >= -1, got '1' (str)"),
    ("beat_poll_interval", 5, "beat_poll_interval: must be an int >= 10, got 5"),
    ("beat_poll_interval", True, "beat_poll_interval: must be an int >= 10, got True (bool)"),
])
def test_bad_scheduler_options_raise_before_anything_is_installed(
    celery_app_factory: Callable[..., Celery], database_url: str, option: str, value: Any, message: str
) -> None:
    app = celery_app_factory()
    with pytest.raises(TaskValidationError) as err:
        TaskSchedulerComponent(app, database_url=database_url, **{option: value})
    assert str(err.value) == message
    assert runner_of(app) is None and scheduler_of(app) is None
