"""Acceptance: real ``celery beat -S bgtask`` and ``celery worker`` processes.

Two beats on PostgreSQL (one on SQLite, the embedded default, which is for a single beat)
fire every trigger exactly once, pick up schedules added and removed at runtime, survive a
raising callback, and keep going when one of them is SIGKILLed. Callback runs are counted
in Redis; firing records are kept (``retain_for=-1``) so each can be checked.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from celery_bgtask import SCHEDULED_TYPE, ScheduledTaskTime, TaskSchedulerComponent, TaskStatus
from celery_bgtask.ids import to_urn
from celery_bgtask.timeutil import dt_to_ms, now_ms
from tests.acceptance.procs import celery_beat, celery_worker, kill_group
from tests.conftest import REDIS_URL
from tests.helpers import require_service, wait_for

pytestmark = pytest.mark.slow
APP = "tests.acceptance.beatapp"
JOBS = "tests.acceptance.beatjobs"
HOUR = 3_600_000


@pytest.fixture
def env(database_url: str, queue_name: str) -> dict[str, str]:
    require_service("Redis", "127.0.0.1", 6379)  # beat and worker are separate processes: a real broker
    return {"BGTASK_DATABASE_URL": database_url, "BGTASK_BROKER_URL": REDIS_URL, "BGTASK_QUEUE": queue_name,
            "BGTASK_TIMEZONE": "Europe/Berlin"}


@pytest.fixture
def sched(env: dict[str, str]) -> Iterator[TaskSchedulerComponent]:
    """The web process's side: it only writes schedules and reads records."""
    app = Celery("web", broker=env["BGTASK_BROKER_URL"], set_as_current=False)
    app.conf.task_default_queue = env["BGTASK_QUEUE"]
    component = TaskSchedulerComponent(app, database_url=env["BGTASK_DATABASE_URL"], retain_for=-1)
    yield component
    component.close()


def records(sched: TaskSchedulerComponent) -> list[Any]:
    return sched.background.query(task_type=SCHEDULED_TYPE, limit=1000).entities


def finished(sched: TaskSchedulerComponent, count: int) -> list[Any] | None:
    found = records(sched)
    return found if len(found) >= count and all(t.status.is_terminal for t in found) else None


def counter(r: redis.Redis, env: dict[str, str], name: str) -> int:
    return int(r.get(f"{env['BGTASK_QUEUE']}:{name}") or 0)


def fire_sentinel(sched: TaskSchedulerComponent, name: str) -> None:
    """A one-off due now: once it has run, every beat has ticked past all that came before."""
    sched.add_task(name, [{"nextTriggerTime": now_ms()}], f"{JOBS}:fired")
    wait_for(lambda: any(t.payload["scheduleId"] == name and t.status is TaskStatus.SUCCESS for t in records(sched)),
             timeout=30, what=f"sentinel {name}")


def assert_each_firing_once(found: list[Any]) -> None:
    keys = [(t.payload["scheduleId"], t.payload["position"], t.payload["triggerTime"]) for t in found]
    assert len(keys) == len(set(keys)), "a trigger fired twice"


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_beats_fire_every_trigger_once_and_follow_runtime_changes(
    backend: str, sched: TaskSchedulerComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    beats = 2 if backend == "postgres" else 1
    with ExitStack() as stack:
        stack.enter_context(celery_worker(APP, env, "-c", "2", log=tmp_path / "worker.log"))
        procs = [stack.enter_context(celery_beat(APP, env, log=tmp_path / f"beat{n}.log")) for n in range(beats)]
        fire_sentinel(sched, "warm-up")  # beats and worker are up: everything below is a runtime change

        now = now_ms()
        due = now + 1500
        for n in range(30):
            sched.add_task(f"one-off-{n:02d}", [{"nextTriggerTime": due}], f"{JOBS}:fired")
        missed = now - 3 * HOUR - HOUR // 2  # beat "was down" for three and a half intervals
        sched.add_task("hourly", [{"nextTriggerTime": missed, "intervalHours": 1}], f"{JOBS}:fired")
        sched.add_task("broken", [{"nextTriggerTime": due}], f"{JOBS}:broken")
        sched.add_task("withdrawn", [{"nextTriggerTime": due + 1000}], f"{JOBS}:fired")
        sched.remove_task("withdrawn")
        wait_for(lambda: finished(sched, 1 + 30 + 1 + 1), timeout=30, what="the 32 due firings")
        fire_sentinel(sched, "after")
        assert all(proc.poll() is None for proc in procs), "a beat died"

    found = records(sched)
    assert_each_firing_once(found)
    by_id: dict[str, list[Any]] = {}
    for task in found:
        by_id.setdefault(task.payload["scheduleId"], []).append(task)
    assert "withdrawn" not in by_id
    assert sorted(by_id) == sorted(["warm-up", "after", "hourly", "broken", *(f"one-off-{n:02d}" for n in range(30))])
    assert all(len(runs) == 1 for runs in by_id.values())
    assert counter(r, env, "fired") == 30 + 1 + 2  # one-offs, hourly, the two sentinels: no run twice
    assert counter(r, env, "broken") == 1
    assert by_id["broken"][0].status is TaskStatus.FAILED and by_id["broken"][0].error.name == "RuntimeError"
    lateness = [dt_to_ms(by_id[f"one-off-{n:02d}"][0].date_created) - due for n in range(30)]
    assert min(lateness) >= 0, "a trigger fired early"
    assert max(lateness) < 2000, f"fired up to {max(lateness)} ms late"
    info = sched.tasks_info().tasks
    twin_keys = {"next_trigger_time", "interval_days", "interval_hours", "interval_minutes"}
    assert [t.model_dump(include=twin_keys) for t in info["one-off-00"]] == [
        ScheduledTaskTime(next_trigger_time=None).model_dump(include=twin_keys)
    ]
    assert [t.model_dump(include=twin_keys) for t in info["hourly"]] == [
        ScheduledTaskTime(next_trigger_time=missed + 4 * HOUR, interval_hours=1).model_dump(include=twin_keys)
    ]
    # Beside TWIN's keys, each time's last firing: its record, which succeeded.
    assert info["hourly"][0].last_task_id == to_urn(by_id["hourly"][0].id)
    assert info["hourly"][0].last_status == "success"


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_sigkilled_beat_leaves_every_remaining_trigger_to_the_other_once(
    backend: str, sched: TaskSchedulerComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        stack.enter_context(celery_worker(APP, env, "-c", "2", log=tmp_path / "worker.log"))
        # One by the entry-point alias, one by the class path the contract names.
        victim = stack.enter_context(celery_beat(APP, env, log=tmp_path / "beat-victim.log",
                                                 scheduler="celery_bgtask.beat:Scheduler"))
        survivor = stack.enter_context(celery_beat(APP, env, log=tmp_path / "beat-survivor.log"))
        fire_sentinel(sched, "warm-up")

        start = now_ms() + 500
        for n in range(16):  # one trigger every 250 ms, for four seconds
            sched.add_task(f"staggered-{n:02d}", [{"nextTriggerTime": start + n * 250}], f"{JOBS}:fired")
        wait_for(lambda: len(records(sched)) >= 1 + 4, timeout=30, what="the first staggered firings")
        kill_group(victim, signal.SIGKILL)
        assert victim.returncode == -signal.SIGKILL
        wait_for(lambda: finished(sched, 1 + 16), timeout=30, what="all 16 staggered firings")
        fire_sentinel(sched, "after")
        assert survivor.poll() is None

    found = records(sched)
    assert_each_firing_once(found)
    staggered = sorted(t.payload["scheduleId"] for t in found if t.payload["scheduleId"].startswith("staggered"))
    assert staggered == [f"staggered-{n:02d}" for n in range(16)]
    assert all(t.status is TaskStatus.SUCCESS for t in found)
    assert counter(r, env, "fired") == 1 + 16 + 1


def triggers_of(found: list[Any], schedule_id: str) -> list[int]:
    return sorted(t.payload["triggerTime"] for t in found if t.payload["scheduleId"] == schedule_id)


@pytest.mark.timeout(330)  # three whole minutes of wall time: the smallest cron period, three times
@pytest.mark.parametrize("backend", ["postgres"])
def test_three_beats_fire_cron_and_seconds_entries_once_per_period_while_one_is_killed_and_restarted(
    backend: str, sched: TaskSchedulerComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    """beat_schedule's crontab() and timedelta(seconds=5), and a cron added with add_task,
    over three minutes with three beats; beat 0 is SIGKILLed and restarted after each minute."""
    env = {**env, "BGTASK_BEAT_ENTRIES": "1"}
    periods = 3
    with ExitStack() as stack:
        stack.enter_context(celery_worker(APP, env, "-c", "2", log=tmp_path / "worker.log"))
        beats = [stack.enter_context(celery_beat(APP, env, log=tmp_path / f"beat{n}.log")) for n in range(3)]
        fire_sentinel(sched, "warm-up")
        sched.add_task("cron-added", [{"cron": "* * * * *", "timezone": "Europe/Berlin"}], f"{JOBS}:fired")
        for period in range(1, periods + 1):
            wait_for(lambda p=period: len(triggers_of(records(sched), "cron-added")) >= p
                     and len(triggers_of(records(sched), "every-minute")) >= p,
                     timeout=90, what=f"minute {period} of both cron schedules")
            if period < periods:
                kill_group(beats[0], signal.SIGKILL)
                assert beats[0].returncode == -signal.SIGKILL
                beats[0] = stack.enter_context(celery_beat(APP, env, log=tmp_path / f"beat0-{period}.log"))
        fire_sentinel(sched, "after")
        assert all(proc.poll() is None for proc in beats), "a beat died"
        for proc in beats:  # no more firings; the worker finishes what was fired
            kill_group(proc)
        count = len(records(sched))
        wait_for(lambda: finished(sched, count), timeout=30, what="every firing to finish")

        def runs_match() -> bool:
            found = records(sched)
            return all(int(r.get(f"{env['BGTASK_QUEUE']}:entry:{name}") or 0) == len(triggers_of(found, name))
                       for name in ("every-minute", "every-5s"))

        wait_for(runs_match, timeout=30, what="each firing's entry task to run once")

    found = records(sched)
    assert_each_firing_once(found)
    failed = [(t.payload["scheduleId"], t.status, t.error) for t in found if t.status is not TaskStatus.SUCCESS]
    assert failed == []
    for schedule_id in ("every-minute", "cron-added"):
        minutes = triggers_of(found, schedule_id)
        assert len(minutes) >= periods
        assert all(m % 60_000 == 0 for m in minutes), f"{schedule_id} fired off the minute"
        assert all(b - a == 60_000 for a, b in pairwise(minutes)), f"{schedule_id} skipped or repeated a minute"
    fives = triggers_of(found, "every-5s")
    assert len(fives) >= periods * 60 // 5 - 12
    assert all(b - a == 5000 for a, b in pairwise(fives)), "the 5 s entry skipped or repeated a period"
    # Each firing sent the entry's task once, with its args and kwargs (the counter's name and step).
    assert int(r.get(f"{env['BGTASK_QUEUE']}:entry:every-5s") or 0) == len(fives)
    assert counter(r, env, "fired") == len(triggers_of(found, "cron-added")) + 2  # and the two sentinels
