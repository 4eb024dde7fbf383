"""``result_backend = "bgtask://"``: Celery's own result API reads our records, on a real
worker: ``get``, ``ready``, ``successful``, ``failed``, ``state``, ``result``, ``traceback``,
``forget``, ``ResultSet`` and ``celery result``."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery, states
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult, ResultSet

from celery_bgtask import BackgroundTaskComponent
from celery_bgtask.celery.results import NoComponentError
from celery_bgtask.ids import parse_task_id
from tests.acceptance.procs import ROOT, celery_env
from tests.helpers import wait_for
from tests.integration import handlers

#: The test's worker runs in this process, which makes Celery refuse a blocking ``get`` as if
#: it were called from inside a task; a client process (the ``celery result`` test) needs no such flag.
IN_PROCESS: dict[str, Any] = {"disable_sync_subtasks": False}


@pytest.fixture
def bg(make_component: Callable[..., BackgroundTaskComponent],
       celery_app_factory: Callable[..., Celery]) -> BackgroundTaskComponent:
    made = make_component(celery_app_factory(result_backend="bgtask://"), default_retain_for=-1)
    for name in ("echo", "boom", "counted", "gated"):
        made.register_handler(name, "tests.integration.handlers", name)
    return made


@pytest.fixture
def open_gate() -> Iterator[None]:
    handlers.gate.clear()
    yield
    handlers.gate.set()


def test_get_returns_the_handlers_result_by_urn_or_bare_id(bg: BackgroundTaskComponent, worker: Any) -> None:
    urn = bg.create("echo", {"n": 1})
    with worker(bg.app):
        res = bg.app.AsyncResult(urn)
        assert res.get(timeout=10, **IN_PROCESS) == {"echo": {"n": 1}}
    assert res.ready() and res.successful() and not res.failed()
    assert res.state == states.SUCCESS and res.result == {"echo": {"n": 1}}
    bare = AsyncResult(parse_task_id(urn), app=bg.app)
    assert bare.state == states.SUCCESS and bare.get(timeout=1, **IN_PROCESS) == {"echo": {"n": 1}}


def test_a_failure_raises_the_handlers_error_with_its_traceback(bg: BackgroundTaskComponent, worker: Any) -> None:
    urn = bg.create("boom", {"n": 1}, retry_count=0)
    res = bg.app.AsyncResult(urn)
    with worker(bg.app), pytest.raises(ValueError, match=r"^boom$"):
        res.get(timeout=10, **IN_PROCESS)
    assert res.ready() and res.failed() and not res.successful()
    assert res.state == states.FAILURE
    assert isinstance(res.result, ValueError) and str(res.result) == "boom"
    assert res.traceback is not None and 'raise ValueError("boom")' in res.traceback
    assert isinstance(res.get(timeout=1, propagate=False, **IN_PROCESS), ValueError)


def test_states_pending_retry_started_and_revoked(bg: BackgroundTaskComponent, worker: Any, open_gate: None) -> None:
    waiting = bg.create("echo", {"n": "waits"})
    cancelled = bg.create("echo", {"n": "cancelled"})
    assert bg.app.AsyncResult(waiting).state == states.PENDING and not bg.app.AsyncResult(waiting).ready()
    assert bg.cancel(cancelled)
    assert bg.app.AsyncResult(cancelled).state == states.REVOKED and bg.app.AsyncResult(cancelled).ready()
    retried = bg.create("counted", {"key": f"rb-retry-{uuid.uuid4().hex}", "fail_times": 1}, retry_count=1,
                        retry_interval=3_600_000)
    running = bg.create("gated", {"key": "rb-gated"})
    with worker(bg.app):
        wait_for(lambda: bg.app.AsyncResult(retried).state == states.RETRY, what="the retry state")
        assert isinstance(bg.app.AsyncResult(retried).result, RuntimeError)
        wait_for(lambda: bg.app.AsyncResult(running).state == states.STARTED, what="the started state")
        handlers.gate.set()
        assert bg.app.AsyncResult(running).get(timeout=10, **IN_PROCESS) == "passed"
        with pytest.raises(CeleryTimeoutError):
            bg.app.AsyncResult(retried).get(timeout=0.2, **IN_PROCESS)


def test_forget_removes_a_finished_record_only(bg: BackgroundTaskComponent, worker: Any) -> None:
    done = bg.create("echo", {"n": 1})
    pending = bg.create("echo", {"n": 2})
    bg.app.AsyncResult(pending).forget()
    assert bg.get(pending) is not None
    with worker(bg.app):
        bg.app.AsyncResult(done).get(timeout=10, **IN_PROCESS)
    bg.app.AsyncResult(done).forget()
    assert bg.get(done) is None
    assert bg.app.AsyncResult(done).state == states.PENDING  # unknown, as Celery says of a forgotten id


def test_a_result_set_over_several_tasks(bg: BackgroundTaskComponent, worker: Any) -> None:
    urns = bg.create_many("echo", [{"n": n} for n in range(5)], chunk_size=2)
    results = ResultSet([bg.app.AsyncResult(u) for u in urns], app=bg.app)
    with worker(bg.app):
        assert results.get(timeout=10, **IN_PROCESS) == [{"echo": {"n": n}} for n in range(5)]
    assert results.ready() and results.successful() and results.completed_count() == 5


def test_plain_celery_tasks_are_said_not_to_be_stored(bg: BackgroundTaskComponent, worker: Any,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    name = f"plain-add-{uuid.uuid4().hex[:8]}"  # task names are checked across apps

    @bg.app.task(name=name)
    def add(a: int, b: int) -> int:
        return a + b

    caplog.set_level(logging.WARNING, logger="celery_bgtask.celery.results")
    with worker(bg.app):
        res = add.delay(1, 2)
        wait_for(lambda: f"stores no results of plain Celery tasks (task {name})" in caplog.text,
                 what="the backend to say it does not store the plain task's result")
    assert res.state == states.PENDING


def test_an_app_without_a_component_says_so(celery_app_factory: Callable[..., Celery]) -> None:
    app = celery_app_factory(result_backend="bgtask://")
    with pytest.raises(NoComponentError, match="build one on this Celery app"):
        _ = app.AsyncResult("0" * 32).state


def test_celery_result_command_prints_the_result(bg: BackgroundTaskComponent, worker: Any, database_url: str) -> None:
    urn = bg.create("echo", {"n": "cli"})
    with worker(bg.app):
        bg.app.AsyncResult(urn).get(timeout=10, **IN_PROCESS)
    out = subprocess.run([sys.executable, "-m", "celery", "-A", "tests.integration.resultapp", "result", urn],
                         cwd=ROOT, env=celery_env({"BGTASK_DATABASE_URL": database_url}), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "{'echo': {'n': 'cli'}}" in out.stdout
