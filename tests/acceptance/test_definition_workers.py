"""Acceptance: task definitions on ``celery worker`` subprocesses (PostgreSQL + Redis).

The test process aborts a definition running in a worker process, and a worker is
SIGKILLed in the middle of an iteration: the next worker resumes from the last
committed input, not from the start.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import redis

from celery_bgtask import BackgroundTaskComponent, TaskStatus
from celery_bgtask.ids import parse_task_id
from tests.acceptance.defapp import register
from tests.acceptance.procs import celery_worker, kill_group
from tests.conftest import REDIS_URL
from tests.helpers import status_of, wait_for

APP = "tests.acceptance.defapp"


pytestmark = [pytest.mark.slow, pytest.mark.backends("postgres")]


@pytest.fixture
def bg(bg: BackgroundTaskComponent, env: dict[str, str]) -> BackgroundTaskComponent:
    """The shared producer, with the definitions the workers run (``defapp``)."""
    register(bg, env["BGTASK_QUEUE"], REDIS_URL)
    return bg


def test_abort_from_the_test_process_stops_a_run_in_a_worker_process(
    bg: BackgroundTaskComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    urn = bg.trigger("waitForAbort")
    key = f"{env['BGTASK_QUEUE']}:{parse_task_id(urn)}"
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w.log"):
        wait_for(lambda: r.get(f"{key}:started"), timeout=60, what="the run to start in the worker")
        assert status_of(bg, urn) is TaskStatus.PROCESSING
        assert bg.abort(urn, "stop from the test process") is True
        wait_for(lambda: status_of(bg, urn) is TaskStatus.CANCELLED, timeout=30, what="the worker to see the abort")
        wait_for(lambda: r.llen(f"{key}:hooks") >= 1, timeout=30, what="on_abort in the worker")
    assert r.lrange(f"{key}:hooks", 0, -1) == [b"on_abort:cancelled"]
    task = bg.get(urn)
    assert task is not None and task.error is not None and task.error.message == "stop from the test process"
    assert bg.abort(urn) is False


def test_sigkill_mid_iteration_resumes_from_the_last_committed_input(
    bg: BackgroundTaskComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    urn = bg.trigger("crashOnce", {"offset": 0, "last": 4})
    key = f"{env['BGTASK_QUEUE']}:{parse_task_id(urn)}"
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w1.log") as first:
        wait_for(lambda: r.get(f"{key}:hanging"), timeout=60, what="the iteration on page 2 to hang")
        kill_group(first, signal.SIGKILL)
    task = bg.get(urn)
    assert task is not None and task.status is TaskStatus.PROCESSING
    assert task.payload == {"offset": 2, "last": 4}  # committed by the iteration before the crash
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w2.log"):
        wait_for(lambda: status_of(bg, urn) is TaskStatus.SUCCESS, timeout=60, what="recovered and finished")
        wait_for(lambda: r.llen(f"{key}:hooks") >= 1, timeout=30, what="on_done in the worker")
    # pages 0 and 1 ran once; page 2 ran again from the committed input (not from page 0)
    assert [int(x) for x in r.lrange(f"{key}:offsets", 0, -1)] == [0, 1, 2, 2, 3, 4]
    task = bg.get(urn)
    assert task is not None
    assert task.result == {"offset": 4, "iteration": 6}  # the lost iteration counts toward max_iterations
    assert r.lrange(f"{key}:hooks", 0, -1) == [b"on_done:success"]
