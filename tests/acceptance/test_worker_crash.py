"""Acceptance: real ``celery worker`` processes on PostgreSQL and Redis, killed the hard way."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import redis
from celery import Celery

from celery_bgtask import BackgroundTaskComponent, TaskStatus
from tests.acceptance.procs import celery_worker, kill_group
from tests.helpers import revoke_when_listening, status_of, wait_for

APP = "tests.acceptance.execapp"


pytestmark = [pytest.mark.slow, pytest.mark.backends("postgres")]


def test_sigkilled_worker_task_is_retried_by_another_worker(
    bg: BackgroundTaskComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    urn = bg.create("hang-first", {"key": "k1"}, retry_count=1, retry_interval=100, retain_for=-1)
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w1.log") as first:
        wait_for(lambda: r.get(f"{env['BGTASK_QUEUE']}:k1:started"), timeout=60, what="first attempt started")
        assert status_of(bg, urn) == TaskStatus.PROCESSING
        kill_group(first, signal.SIGKILL)  # the main process and its pool child, no chance to clean up
    assert status_of(bg, urn) == TaskStatus.PROCESSING  # nobody has touched it yet
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w2.log"):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS, timeout=60, what="recovered and retried")
    task = bg.get(urn)
    assert task is not None
    assert task.result == "done on attempt 2"
    assert task.retries_remaining == 0


def test_sigkilled_worker_task_without_retries_fails_with_worker_lost(
    bg: BackgroundTaskComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    urn = bg.create("hang-first", {"key": "k2"}, retain_for=-1)
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w1.log") as first:
        wait_for(lambda: r.get(f"{env['BGTASK_QUEUE']}:k2:started"), timeout=60, what="first attempt started")
        kill_group(first, signal.SIGKILL)
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w2.log"):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, timeout=60, what="lease expiry fails the task")
    task = bg.get(urn)
    assert task is not None and task.error is not None
    assert task.error.name == "WorkerLostError"
    assert r.get(f"{env['BGTASK_QUEUE']}:k2:attempts") == b"1"  # never silently re-run without a retry


def test_a_worker_killed_mid_chunk_loses_no_task_and_reruns_no_finished_one(
    bg: BackgroundTaskComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    keys = ["c1", "c2", "c3", "c4"]
    payloads = [{"key": k, "hang": k == "c2"} for k in keys]
    urns = bg.create_many("hang-first", payloads, chunk_size=4, retry_count=1, retry_interval=100, retain_for=-1)
    # The chunk's unacked message only comes back from Redis after its visibility timeout
    # (an hour); the tasks it still held are published again by the sweeper instead.
    env = {**env, "BGTASK_REDELIVER_AFTER": "2000"}
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w1.log") as first:
        wait_for(lambda: r.get(f"{env['BGTASK_QUEUE']}:c2:started"), timeout=60, what="the chunk's second task hangs")
        assert [status_of(bg, u) for u in urns] == [TaskStatus.SUCCESS, TaskStatus.PROCESSING,
                                                  TaskStatus.PENDING, TaskStatus.PENDING]
        kill_group(first, signal.SIGKILL)
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w2.log"):
        wait_for(lambda: all(status_of(bg, u) == TaskStatus.SUCCESS for u in urns), timeout=60,
                 what="the hung task retried and the rest of the chunk run")
    assert [r.get(f"{env['BGTASK_QUEUE']}:{k}:attempts") for k in keys] == [b"1", b"2", b"1", b"1"]
    hung = bg.get(urns[1])
    assert hung is not None and hung.result == "done on attempt 2"


def test_a_revoke_with_terminate_cancels_the_running_task_and_it_never_runs_again(
    bg: BackgroundTaskComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    """``revoke(id, terminate=True)`` on a prefork worker: Celery kills the pool process running
    it, the record becomes ``cancelled`` at once (not failed by the lease running out), and
    whatever comes back of the message finds nothing to run."""
    # No retries: were the running record not cancelled, its lease would run out and fail it.
    urn = bg.create("hang-first", {"key": "t1"}, retain_for=-1)
    bare = urn.rsplit(":", 1)[1]
    with celery_worker(APP, env, "-c", "1", log=tmp_path / "w.log"):
        wait_for(lambda: r.get(f"{env['BGTASK_QUEUE']}:t1:started"), timeout=60, what="the run started")
        revoke_when_listening(bg.app, bare, terminate=True)
        wait_for(lambda: status_of(bg, urn) == TaskStatus.CANCELLED, timeout=30, what="the running task cancelled")
        # The worker carries on: a later task runs, after whatever came back of the revoked one.
        after = bg.create("echo", {"n": "after"}, retain_for=-1)
        wait_for(lambda: status_of(bg, after) == TaskStatus.SUCCESS, timeout=30, what="a later task to run")
    task = bg.get(urn)
    assert task is not None and task.status == TaskStatus.CANCELLED and task.date_cancelled is not None
    assert r.get(f"{env['BGTASK_QUEUE']}:t1:attempts") == b"1"  # killed once, never run again


def test_create_with_broker_down_commits_and_is_published_later(
    env: dict[str, str], tmp_path: Path
) -> None:
    down = Celery("producer-down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    down.conf.task_default_queue = env["BGTASK_QUEUE"]
    producer = BackgroundTaskComponent(down, database_url=env["BGTASK_DATABASE_URL"])
    try:
        urns = [producer.create("echo", {"n": i}, retain_for=-1) for i in range(3)]
        for urn in urns:
            task = producer.get(urn)
            assert task is not None and task.status == TaskStatus.PENDING
        with celery_worker(APP, env, "-c", "2", log=tmp_path / "w.log"):
            wait_for(lambda: all(status_of(producer, u) == TaskStatus.SUCCESS for u in urns), timeout=60,
                     what="the sweeper published what the producer could not")
        assert [producer.get(u).result for u in urns] == [{"echo": {"n": i}} for i in range(3)]  # type: ignore[union-attr]
    finally:
        producer.engine.dispose()


def test_max_worker_count_holds_across_two_worker_processes(
    bg: BackgroundTaskComponent, env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    urns = bg.create_many("capped", [{"n": i} for i in range(8)], retain_for=-1)
    with celery_worker(APP, env, "-c", "2", "-n", "one@%h", log=tmp_path / "a.log"), \
            celery_worker(APP, env, "-c", "2", "-n", "two@%h", log=tmp_path / "b.log"):
        prefix = env["BGTASK_QUEUE"]
        # Two runs are inside, held at the gate: the others must wait for a slot.
        wait_for(lambda: int(r.get(f"{prefix}:cap:current") or 0) >= 2, timeout=60, what="two capped runs at once")
        r.set(f"{prefix}:cap:gate", 1)
        wait_for(lambda: all(status_of(bg, u) == TaskStatus.SUCCESS for u in urns), timeout=90, what="all capped runs")
    peak = int(r.get(f"{env['BGTASK_QUEUE']}:cap:peak") or 0)
    # Four pool processes could run four at once; the cap allows two.
    assert peak <= 2, f"at most 2 may run at once across both workers, saw {peak}"
