"""Every lifecycle path of a task on a real worker, on every backend."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from celery_bgtask import BackgroundTask, TaskStatus
from celery_bgtask.celery.publish import Wakeup
from celery_bgtask.celery.sweeper import Sweeper
from celery_bgtask.timeutil import now_ms
from tests.helpers import revoke_when_listening, status_of, wait_for, write
from tests.integration import handlers

H = "tests.integration.handlers"


def _recorder() -> tuple[list[tuple[str, Any]], Any]:
    seen: list[tuple[str, Any]] = []

    def callback(task: BackgroundTask[Any, Any]) -> None:
        seen.append((task.status.value, task.retries_remaining))

    return seen, callback


@pytest.fixture(autouse=True)
def _reset_handlers() -> None:
    handlers.runs.clear()
    handlers.lifecycle.clear()
    handlers.gate.clear()


def test_success_records_result_and_fires_callbacks(make_component: Any, worker: Any) -> None:
    seen: list[tuple[str, Any]] = []
    bg = make_component()
    bg.register_handler("echo", H, "echo", state_change_callback=lambda t: seen.append((t.status.value, t.result)))
    urn = bg.create("echo", {"n": 1}, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS, what="success")
        wait_for(lambda: len(seen) == 2, what="two callbacks")
    task = bg.get(urn)
    assert task is not None
    assert task.result == {"echo": {"n": 1}}
    assert task.date_completed is not None and task.error is None
    assert task.date_retain_until is None
    assert seen == [("processing", None), ("success", {"echo": {"n": 1}})]


def test_failure_without_retries_is_final(make_component: Any, worker: Any) -> None:
    seen, callback = _recorder()
    bg = make_component()
    bg.register_handler("boom", H, "boom", state_change_callback=callback)
    urn = bg.create("boom", {"a": 1}, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="failed")
        wait_for(lambda: len(seen) == 2)
    task = bg.get(urn)
    assert task is not None and task.error is not None
    assert (task.error.name, task.error.message) == ("ValueError", "boom")
    assert task.date_completed is not None and task.result is None
    assert seen == [("processing", None), ("failed", None)]


def test_retry_then_success_clears_error(make_component: Any, worker: Any) -> None:
    seen, callback = _recorder()
    bg = make_component()
    bg.register_handler("counted", H, "counted", state_change_callback=callback)
    urn = bg.create("counted", {"key": "r1", "fail_times": 1}, retry_count=2, retry_interval=100, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS, what="success after a retry")
        wait_for(lambda: len(seen) == 4)
    task = bg.get(urn)
    assert task is not None
    assert task.result == 2 and task.error is None and task.retries_remaining == 1
    assert seen == [("processing", 2), ("pending", 1), ("processing", 1), ("success", 1)]


def test_retries_exhausted_fail_with_last_error(make_component: Any, worker: Any) -> None:
    seen, callback = _recorder()
    bg = make_component()
    bg.register_handler("counted", H, "counted", state_change_callback=callback)
    urn = bg.create("counted", {"key": "r2", "fail_times": 9}, retry_count=2, retry_interval=50, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="failed after retries")
        wait_for(lambda: len(seen) == 6)
    task = bg.get(urn)
    assert task is not None and task.error is not None
    assert task.retries_remaining == 0 and task.error.message == "attempt 3 fails"
    assert handlers.runs["r2"] == 3
    assert [s for s, _ in seen] == ["processing", "pending", "processing", "pending", "processing", "failed"]


def test_pending_retry_keeps_error_and_waits_for_interval(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("counted", H, "counted")
    urn = bg.create("counted", {"key": "r3", "fail_times": 1}, retry_count=1, retry_interval=60_000, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: handlers.runs["r3"] == 1 and status_of(bg, urn) == TaskStatus.PENDING, what="retry pending")
        task = bg.get(urn)
        assert task is not None and task.error is not None and task.error.message == "attempt 1 fails"
        assert task.retries_remaining == 0
        # retry() runs a task that waits for its next retry now, not in a minute.
        assert bg.retry(urn) is True
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS, what="success after retry()")
    assert handlers.runs["r3"] == 2


def test_retry_requeues_a_retained_failed_task(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("counted", H, "counted")
    urn = bg.create("counted", {"key": "r4", "fail_times": 1}, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED)
        assert bg.retry(urn) is True
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS, what="requeued task succeeds")
    task = bg.get(urn)
    assert task is not None and task.result == 2 and task.date_completed is not None


def test_payload_failing_the_pydantic_annotation_fails_without_retry(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("typed", H, "typed")
    good = bg.create("typed", {"x": 1, "y": 2}, retain_for=-1)
    bad = bg.create("typed", {"x": "one"}, retry_count=3, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, good) == TaskStatus.SUCCESS and status_of(bg, bad) == TaskStatus.FAILED)
    ok, failed = bg.get(good), bg.get(bad)
    assert ok is not None and ok.result == {"sum": 3}
    assert failed is not None and failed.error is not None and failed.error.name == "ValidationError"
    assert failed.retries_remaining == 3  # not retried: the payload will never validate


def test_handler_without_payload_is_called_with_no_argument(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("bare", H, "no_payload")
    urn = bg.create("bare", retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS)
    task = bg.get(urn)
    assert task is not None and task.result == "ran" and task.payload is None


def test_retain_for_zero_removes_the_record_after_the_final_callback(make_component: Any, worker: Any) -> None:
    seen, callback = _recorder()
    bg = make_component()
    bg.register_handler("echo", H, "echo", state_change_callback=callback)
    urn = bg.create("echo", {"n": 2}, retain_for=0)
    with worker(bg.app):
        wait_for(lambda: len(seen) == 2, what="final callback")
        wait_for(lambda: bg.get(urn) is None, what="record removed")
    assert [s for s, _ in seen] == ["processing", "success"]


def test_retain_for_sets_retain_until_and_the_worker_cleans_up(make_component: Any, worker: Any) -> None:
    bg = make_component(cleanup_interval=100)
    bg.register_handler("echo", H, "echo")
    short = bg.create("echo", 1, retain_for=300)
    forever = bg.create("echo", 2, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, forever) == TaskStatus.SUCCESS)
        wait_for(lambda: status_of(bg, short) in (TaskStatus.SUCCESS, None))
        task = bg.get(short)
        if task is not None:
            assert task.date_retain_until is not None
            assert (task.date_retain_until - task.date_modified).total_seconds() == pytest.approx(0.3)
        wait_for(lambda: bg.get(short) is None, what="cleanup of the expired record")
    kept = bg.get(forever)
    assert kept is not None and kept.date_retain_until is None


def test_cleanup_removes_exactly_the_expired_records(make_component: Any) -> None:
    bg = make_component()
    now = now_ms()
    urns = {name: bg.create("kept", None, retain_for=-1) for name in ("expired1", "expired2", "future", "pending")}
    ids = {name: urn.rsplit(":", 1)[1] for name, urn in urns.items()}
    for name, until in (("expired1", now - 1000), ("expired2", now - 1), ("future", now + 60_000)):
        bg.store.apply(ids[name], write({"status": "success", "date_completed": now - 2000,
                                         "date_retain_until": until}, statuses=("pending",)))
    removed = Sweeper(bg).cleanup(now)
    assert removed.deleted == 2 and removed.finished
    assert bg.get(urns["expired1"]) is None and bg.get(urns["expired2"]) is None
    assert bg.get(urns["future"]) is not None and bg.get(urns["pending"]) is not None


def test_duplicate_delivery_runs_once(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("counted", H, "counted")
    urn = bg.create("counted", {"key": "dup"}, retain_for=-1)
    bare = urn.rsplit(":", 1)[1]
    for _ in range(3):
        assert bg.runner.publish_many([Wakeup(bare, 0, bg.settings.queue, "counted", now_ms())])
    sentinel = bg.create("echo-later", None, retain_for=-1)
    bg.register_handler("echo-later", H, "no_payload")
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS)
        wait_for(lambda: status_of(bg, sentinel) == TaskStatus.SUCCESS, what="the later message drained")
    assert handlers.runs["dup"] == 1


def test_cancelled_and_removed_tasks_never_run(make_component: Any, worker: Any) -> None:
    seen, callback = _recorder()
    bg = make_component()
    bg.register_handler("counted", H, "counted", state_change_callback=callback)
    cancelled = bg.create("counted", {"key": "cancelled"}, retain_for=-1)
    removed = bg.create("counted", {"key": "removed"}, retain_for=-1)
    assert bg.cancel(cancelled) is True
    assert bg.remove(removed) is True
    after = bg.create("counted", {"key": "after"}, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, after) == TaskStatus.SUCCESS)
    task = bg.get(cancelled)
    assert task is not None and task.status == TaskStatus.CANCELLED and task.date_cancelled is not None
    assert bg.get(removed) is None
    assert handlers.runs["cancelled"] == 0 and handlers.runs["removed"] == 0
    assert seen[0] == ("cancelled", None)
    assert bg.cancel(after) is False  # only pending tasks change


def test_task_without_handler_waits_until_a_worker_has_one(
    make_component: Any, celery_app_factory: Any, worker: Any
) -> None:
    producer = make_component()
    urn = producer.create("late-type", {"key": "late"}, retain_for=-1)
    consumer = make_component(celery_app_factory())
    with worker(consumer.app):
        # The worker has no handler: it leaves the record pending (and says so in the log).
        wait_for(lambda: consumer.store.get(urn.rsplit(":", 1)[1]).enqueued_at is None, what="message consumed")
        assert status_of(producer, urn) == TaskStatus.PENDING
        consumer.register_handler("late-type", H, "counted")
        wait_for(lambda: status_of(producer, urn) == TaskStatus.SUCCESS, what="picked up once a handler exists")
    assert handlers.runs["late"] == 1


def test_unregistered_handler_leaves_pending_tasks_pending(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("echo", H, "echo")
    bg.unregister_handler("echo")
    urn = bg.create("echo", 1, retain_for=-1)
    bg.register_handler("other", H, "no_payload")
    other = bg.create("other", retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, other) == TaskStatus.SUCCESS)
        wait_for(lambda: bg.store.get(urn.rsplit(":", 1)[1]).enqueued_at is None, what="message consumed")
    assert status_of(bg, urn) == TaskStatus.PENDING


def test_callback_that_raises_never_changes_the_outcome(make_component: Any, worker: Any) -> None:
    calls: list[str] = []

    def bad_callback(task: BackgroundTask[Any, Any]) -> None:
        calls.append(task.status.value)
        raise RuntimeError("callback bug")

    bg = make_component()
    bg.register_handler("echo", H, "echo", state_change_callback=bad_callback)
    urn = bg.create("echo", 5, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS)
        wait_for(lambda: len(calls) == 2)
    assert calls == ["processing", "success"]


def test_initialise_and_idle_shutdown_run_per_process(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler(
        "tracked", H, "tracked",
        options={"initialiseMethod": "initialise", "shutdownMethod": "shutdown", "idleShutdownTimeout": 200},
    )
    with worker(bg.app, pool="solo"):
        first = bg.create("tracked", None, retain_for=-1)
        second = bg.create("tracked", None, retain_for=-1)
        wait_for(lambda: status_of(bg, first) == TaskStatus.SUCCESS and status_of(bg, second) == TaskStatus.SUCCESS)
        wait_for(lambda: handlers.lifecycle[-1:] == ["shutdown"], what="idle shutdown")
        third = bg.create("tracked", None, retain_for=-1)
        wait_for(lambda: status_of(bg, third) == TaskStatus.SUCCESS)
    assert handlers.lifecycle[:4] == ["initialise", "run", "run", "shutdown"], handlers.lifecycle
    assert handlers.lifecycle[4:6] == ["initialise", "run"]
    assert handlers.lifecycle[-1] == "shutdown"  # the worker stopping shuts the live type down


def test_max_worker_count_holds_within_one_worker(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("gated", H, "gated", options={"maxWorkerCount": 1})
    urns = [bg.create("gated", {"key": f"g{i}"}, retain_for=-1) for i in range(3)]
    with worker(bg.app, concurrency=3):
        wait_for(lambda: sum(handlers.runs.values()) == 1, what="one run started")
        statuses = [status_of(bg, u) for u in urns]
        assert statuses.count(TaskStatus.PROCESSING) == 1
        assert statuses.count(TaskStatus.PENDING) == 2
        handlers.gate.set()
        wait_for(lambda: all(status_of(bg, u) == TaskStatus.SUCCESS for u in urns), what="all three in turn")
    assert sum(handlers.runs.values()) == 3


def test_a_celery_revoke_is_not_lost_it_cancels_the_record(make_component: Any, worker: Any) -> None:
    seen, callback = _recorder()
    bg = make_component()
    bg.register_handler("counted", H, "counted", state_change_callback=callback)
    urn = bg.create("counted", {"key": "rv", "fail_times": 1}, retry_count=1, retry_interval=60_000, retain_for=-1)
    bare = urn.rsplit(":", 1)[1]
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.PENDING and handlers.runs["rv"] == 1, what="waiting retry")
        revoke_when_listening(bg.app, bare)  # plain Celery revoke, by the id the message carries
        # The worker's sweeper records it at once, while the retry still waits (no message yet,
        # so a worker restart before it came due would have lost a revoke kept only in memory).
        wait_for(lambda: status_of(bg, urn) == TaskStatus.CANCELLED, what="revoke recorded as cancelled")
        assert bg.retry(urn) is False  # nothing waits any more
    task = bg.get(urn)
    assert task is not None and task.date_cancelled is not None
    assert handlers.runs["rv"] == 1
    assert seen[-1] == ("cancelled", 0)


def test_a_long_run_keeps_its_lease_alive_and_is_not_recovered(make_component: Any, worker: Any) -> None:
    # 1 s, renewed every third of that: a stall of the loaded test machine shorter than
    # two thirds of a second must not look like a dead worker (300 ms leases did, once).
    bg = make_component(lease=1000)
    bg.register_handler("gated", H, "gated")
    urn = bg.create("gated", {"key": "long"}, retry_count=1, retain_for=-1)
    bare = urn.rsplit(":", 1)[1]
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.PROCESSING)
        first = bg.store.get(bare).lease_until
        # Several lease lengths pass; the heartbeat keeps pushing the lease out, so the
        # sweeper (polling every 50 ms) never takes the run away.
        wait_for(lambda: bg.store.get(bare).lease_until > first + 3000, what="the lease renewed past 3 lease lengths")
        assert status_of(bg, urn) == TaskStatus.PROCESSING
        handlers.gate.set()
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS)
    task = bg.get(urn)
    assert task is not None and task.retries_remaining == 1  # never retried
    assert handlers.runs["long"] == 1


def test_cancel_of_a_running_task_says_why_it_changed_nothing(make_component: Any, worker: Any,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    bg = make_component()
    bg.register_handler("gated", H, "gated")
    urn = bg.create("gated", {"key": "running"}, retain_for=-1)
    bare = urn.rsplit(":", 1)[1]
    with worker(bg.app):
        wait_for(lambda: handlers.runs["running"] == 1, what="the run started")
        with caplog.at_level(logging.INFO, logger="celery_bgtask.component"):
            assert bg.cancel(urn) is False
        handlers.gate.set()
        wait_for(lambda: status_of(bg, urn) == TaskStatus.SUCCESS, what="the run finished anyway")
    said = [r for r in caplog.records if r.name == "celery_bgtask.component" and bare in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    message = said[0].getMessage()
    assert "is processing" in message and "abort()" in message and "type gated" in message
