"""Acceptance: a worker and a beat whose database does not answer when they start.

They start anyway, say so in one line (the URL without its password), retry with backoff
without flooding the log, and go to work once the database answers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy.engine import make_url

from celery_bgtask import BackgroundTaskComponent, ScheduledTaskTime, TaskSchedulerComponent, TaskStatus
from celery_bgtask.timeutil import now_ms
from tests.acceptance.procs import celery_beat, celery_worker
from tests.conftest import REDIS_URL
from tests.helpers import require_service, status_of, wait_for
from tests.tcpproxy import TcpProxy

PASSWORD = "s3cret-pw"


pytestmark = [pytest.mark.slow, pytest.mark.backends("postgres")]


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    """The database behind a link that starts cut."""
    url = make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as link:
        link.cut()
        yield link


@pytest.fixture
def env(database_url: str, queue_name: str, proxy: TcpProxy) -> dict[str, str]:
    require_service("Redis", "127.0.0.1", 6379)
    # Trust authentication ignores the password; it is there to be kept out of the logs.
    proxied = make_url(database_url).set(host="127.0.0.1", port=proxy.port, password=PASSWORD)
    return {"BGTASK_DATABASE_URL": proxied.render_as_string(hide_password=False), "BGTASK_BROKER_URL": REDIS_URL,
            "BGTASK_QUEUE": queue_name}


def _log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _logged_tracebacks(text: str) -> int:
    """Log records that carry a traceback (a chained one prints several "Traceback" headers)."""
    lines = text.splitlines()
    return sum(1 for before, line in itertools.pairwise(lines)
               if line.startswith("Traceback") and before.startswith("["))


def test_a_worker_started_while_the_database_is_down_says_so_once_and_works_once_it_answers(
    database_url: str, env: dict[str, str], proxy: TcpProxy, tmp_path: Path
) -> None:
    app = Celery("producer", broker=REDIS_URL, set_as_current=False)
    app.conf.task_default_queue = env["BGTASK_QUEUE"]
    bg = BackgroundTaskComponent(app, database_url=database_url)  # straight to the database
    log = tmp_path / "worker.log"
    try:
        urn = bg.create("echo", {"n": 1}, retain_for=-1)
        with celery_worker("tests.acceptance.execapp", env, "-c", "1", log=log) as proc:
            wait_for(lambda: "is not answering" in _log(log), timeout=60, what="the worker's line about the database")
            wait_for(lambda: "failure 3)" in _log(log), timeout=60, what="three failed sweeps, with backoff")
            assert proc.poll() is None, _log(log)  # it started, and is still running
            proxy.restore()
            wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS, timeout=60, what="the task, once it answers")
            wait_for(lambda: "working again" in _log(log), timeout=60, what="the sweeper's line that it works again")
        text = _log(log)
        assert PASSWORD not in text
        line = next(x for x in text.splitlines() if "is not answering" in x)
        assert "postgresql+psycopg://postgres:***@127.0.0.1" in line and "retries it with backoff" in line
        assert _logged_tracebacks(text) <= 1, text
    finally:
        bg.engine.dispose()


def test_a_beat_whose_database_is_down_logs_a_line_per_failure_with_backoff_and_fires_once_it_answers(
    database_url: str, env: dict[str, str], proxy: TcpProxy, tmp_path: Path
) -> None:
    app = Celery("web", broker=REDIS_URL, set_as_current=False)
    app.conf.task_default_queue = env["BGTASK_QUEUE"]
    sched = TaskSchedulerComponent(app, database_url=database_url, retain_for=-1)
    log = tmp_path / "beat.log"
    try:
        sched.add_task("soon", [ScheduledTaskTime(next_trigger_time=now_ms())], "tests.acceptance.beatjobs:fired")
        with celery_beat("tests.acceptance.beatapp", env, log=log):
            wait_for(lambda: "(failure 4)" in _log(log), timeout=60, what="four failed ticks")
            text = _log(log)
            assert _logged_tracebacks(text) == 1, text  # one traceback a minute, one line a failure
            # Backoff: 0.2, 0.4, 0.8 s... rather than a failure every 0.2 s poll.
            assert "trying again in 1.6s (failure 4)" in text
            proxy.restore()
            wait_for(lambda: sched.tasks_info().tasks["soon"][0].next_trigger_time is None, timeout=60,
                     what="the firing, once the database answers")
            wait_for(lambda: "working again" in _log(log), timeout=60, what="the beat's line that it works again")
        assert PASSWORD not in _log(log)
    finally:
        sched.close()
