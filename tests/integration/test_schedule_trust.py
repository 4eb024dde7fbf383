"""What a scheduled firing runs comes from the schedule that ``add_task`` checked, never from the firing.

A firing's record could be written by other means than the beat (directly in the
database, say), so its payload is not trusted: the worker reads the callback from the
schedule's row, and functions of modules such as ``os`` and ``sys`` are refused when a
schedule is added and again when it fires.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from celery_bgtask import TaskSchedulerComponent, TaskStatus, TaskValidationError
from celery_bgtask.ids import parse_task_id
from celery_bgtask.scheduling.callbacks import FUNCTION
from celery_bgtask.scheduling.times import plan_times
from celery_bgtask.store.schema import tasks
from celery_bgtask.timeutil import now_ms
from tests.helpers import wait_for
from tests.integration import scheduled_jobs

NIGHTLY = f"{FUNCTION}tests.integration.scheduled_jobs:nightly"
OTHER = f"{FUNCTION}tests.integration.scheduled_jobs:other"


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    scheduled_jobs.calls.clear()


def _one_firing(sched: TaskSchedulerComponent, schedule_id: str = "nightly") -> str:
    now = now_ms()
    sched.add_task(schedule_id, [{"nextTriggerTime": now - 1}], scheduled_jobs.nightly)
    (urn,) = sched.fire_due(now)
    return urn


def _set_payload(sched: TaskSchedulerComponent, urn: str, payload: dict[str, Any]) -> None:
    """Rewrite a committed firing's payload in the database, as someone with write access could."""
    with sched.engine.begin() as conn:
        conn.execute(update(tasks).where(tasks.c.id == parse_task_id(urn)).values(payload=json.dumps(payload)))


def _finished(sched: TaskSchedulerComponent, urn: str, worker: Any) -> Any:
    with worker(sched.app):
        return wait_for(lambda: (t := sched.background.get(urn)) is not None and t.status.is_terminal and t,
                        what="the firing to finish")


def test_a_firing_runs_its_schedules_callback_not_the_one_its_payload_names(make_scheduler: Any, worker: Any) -> None:
    sched = make_scheduler()
    urn = _one_firing(sched)
    record = sched.background.get(urn)
    assert record is not None and record.payload["callback"] == NIGHTLY  # still shown on the record
    _set_payload(sched, urn, {**record.payload, "callback": OTHER})
    done = _finished(sched, urn, worker)
    assert done.status is TaskStatus.SUCCESS and done.result == {"run": 1}
    assert scheduled_jobs.calls == {"nightly": 1}  # never "other"


def test_a_firing_of_a_removed_schedule_fails_and_runs_nothing(make_scheduler: Any, worker: Any) -> None:
    sched = make_scheduler()
    urn = _one_firing(sched)
    assert sched.remove_task("nightly") is True
    done = _finished(sched, urn, worker)
    assert done.status is TaskStatus.FAILED and done.error is not None
    assert done.error.name == "ScheduleNotFoundError"
    assert done.error.message == "scheduleId: there is no schedule 'nightly' (removed); nothing was run"
    assert scheduled_jobs.calls == {}


@pytest.mark.parametrize("payload", [{"callback": OTHER}, {"scheduleId": 7, "callback": OTHER}, [OTHER]])
def test_a_firing_that_names_no_schedule_fails_and_runs_nothing(
    make_scheduler: Any, worker: Any, payload: Any
) -> None:
    sched = make_scheduler()
    urn = _one_firing(sched)
    _set_payload(sched, urn, payload)
    done = _finished(sched, urn, worker)
    assert done.status is TaskStatus.FAILED and done.error is not None
    assert done.error.name == "TaskValidationError"
    assert done.error.message.startswith("payload.scheduleId: a firing must name its schedule")
    assert scheduled_jobs.calls == {}


def test_a_refused_callback_stored_without_add_task_is_refused_when_it_fires(make_scheduler: Any, worker: Any) -> None:
    sched = make_scheduler()
    assert sched.tasks_info().tasks == {}  # (creates the schema)
    now = now_ms()
    # Straight into the schedule table, past add_task's checks (an older version, or the database).
    sched.store.replace("pid", f"{FUNCTION}os:getpid", plan_times([{"nextTriggerTime": now - 1}], now), now)
    (urn,) = sched.fire_due(now)
    done = _finished(sched, urn, worker)
    assert done.status is TaskStatus.FAILED and done.error is not None, done.result  # os.getpid() never ran
    assert done.error.name == "TaskValidationError"
    assert "task_callback: os:getpid: functions of the module 'os' are refused" in done.error.message


REFUSED: list[tuple[Any, str]] = [
    ("os:abort", "os"),
    ("sys:exit", "sys"),
    ("builtins:input", "builtins"),
    ("builtins:eval", "builtins"),
    ("os:system", "os"),
    ("os.path:join", "os"),
    ("subprocess:run", "subprocess"),
    ("shutil:rmtree", "shutil"),
    ("importlib:import_module", "importlib"),
    ("tests.integration.scheduled_jobs:process_id", "posix" if os.name == "posix" else "nt"),
    ("tests.integration.scheduled_jobs:os.getpid", "os"),
    (os.abort, "posix" if os.name == "posix" else "nt"),
    (sys.exit, "sys"),
    (input, "builtins"),
    (eval, "builtins"),
    (os.path.join, os.path.__name__),
    (subprocess.run, "subprocess"),
    (shutil.rmtree, "shutil"),
    (os.walk, "os"),
]


@pytest.mark.parametrize(("callback", "module"), REFUSED, ids=[str(getattr(c, "__name__", c)) for c, _ in REFUSED])
def test_functions_of_refused_modules_cannot_be_scheduled(make_scheduler: Any, callback: Any, module: str) -> None:
    sched = make_scheduler()
    with pytest.raises(TaskValidationError) as err:
        sched.add_task("danger", [{"intervalDays": 1}], callback)
    assert err.value.field == "task_callback"
    assert f"functions of the module {module!r} are refused" in err.value.rule
    assert sched.tasks_info().tasks == {}


def test_a_refused_module_is_not_even_imported_by_add_task(tmp_path: Path) -> None:
    """The name is checked before any import: importing a module can run code of its own."""
    script = f"""
import sys
from celery import Celery
from celery_bgtask import TaskSchedulerComponent, TaskValidationError
sched = TaskSchedulerComponent(Celery(broker="memory://", set_as_current=False),
                               database_url="sqlite:///{tmp_path / 'db.sqlite3'}")
for name in ("pty:spawn", "pdb:set_trace"):
    try:
        sched.add_task("danger", [{{"intervalDays": 1}}], name)
    except TaskValidationError as exc:
        print(exc.field)
print(sorted(m for m in ("pty", "pdb") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["task_callback", "task_callback", "[]"], out.stderr
