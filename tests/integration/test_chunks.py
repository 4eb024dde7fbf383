"""``create_many(..., chunk_size=n)``: one wake-up message for several tasks, on a real worker, on every backend."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from celery import Celery, signals

from celery_bgtask import BackgroundTask, TaskContext, TaskStatus, TaskValidationError
from celery_bgtask.celery import RUN_MANY_TASK, RUN_TASK
from celery_bgtask.ids import parse_task_id
from tests.helpers import revoke_when_listening, status_of, take_messages, wait_for
from tests.integration import handlers

H = "tests.integration.handlers"


@pytest.fixture(autouse=True)
def _reset_handlers() -> None:
    handlers.runs.clear()
    handlers.gate.clear()


def _queued(app: Celery, queue: str) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Take every message off ``queue``: (task name, args, kwargs) of each."""
    return [(headers["task"], args, kwargs) for headers, args, kwargs in take_messages(app, queue)]


class _Callbacks:
    """Every state-change callback, by bare task id (callbacks run on the worker's pool threads)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, task: BackgroundTask[Any, Any]) -> None:
        with self._lock:
            self.seen.setdefault(parse_task_id(task.id), []).append(task.status.value)


def test_a_chunk_is_one_message_for_several_tasks(make_component: Any, queue_name: str) -> None:
    bg = make_component()
    urns = bg.create_many("echo", [{"n": n} for n in range(7)], chunk_size=3)
    sent = _queued(bg.app, queue_name)
    # Two chunks of three; the one left over goes as an ordinary wake-up.
    assert [name for name, _, _ in sent] == [RUN_MANY_TASK, RUN_MANY_TASK, RUN_TASK]
    items = [item for _, (chunk,), _ in sent[:2] for item in chunk] + [sent[2][1]]
    assert items == [[parse_task_id(u), 0] for u in urns]  # every task once, in order, at attempt 0
    assert {kwargs["task_type"] for _, _, kwargs in sent} == {"echo"}
    # The default stays one message a task, named by the record's id.
    single = bg.create_many("echo", [1, 2])
    assert [(name, args[0]) for name, args, _ in _queued(bg.app, queue_name)] == [
        (RUN_TASK, parse_task_id(u)) for u in single]


def test_a_chunk_gets_celerys_time_limits_times_its_size(make_component: Any, celery_app_factory: Any,
                                                         queue_name: str) -> None:
    bg = make_component(celery_app_factory(task_time_limit=30, task_soft_time_limit=20))
    bg.create_many("echo", [1, 2, 3, 4], chunk_size=3)
    limits = [(headers["task"], headers["timelimit"]) for headers, _, _ in take_messages(bg.app, queue_name)]
    assert limits == [(RUN_MANY_TASK, [90, 60]), (RUN_TASK, [None, None])]  # a single task: the task's own


def test_a_definition_in_a_chunk_budgets_a_tasks_share_of_the_time_limit(
    make_component: Any, celery_app_factory: Any, worker: Any
) -> None:
    bg = make_component(celery_app_factory(task_soft_time_limit=2))

    @bg.definition(id="budgeted", retain_for=-1)
    def budgeted(ctx: TaskContext[Any]) -> Any:
        return ctx.response.done({"remaining": ctx.runtime.remaining_seconds()})

    urns = bg.create_many("budgeted", [{}, {}, {}], chunk_size=3, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: all(status_of(bg, u) == TaskStatus.SUCCESS for u in urns), what="the chunk ran")
    # The chunk's message allows 6 s; each task's own budget is still 2 s.
    remaining = [bg.get(u).result["remaining"] for u in urns]
    assert all(1 < r <= 2 for r in remaining), remaining


def test_every_task_of_a_chunk_runs_once_with_its_own_callbacks(make_component: Any, worker: Any) -> None:
    callbacks = _Callbacks()
    bg = make_component()
    bg.register_handler("echo", H, "echo", state_change_callback=callbacks)
    urns = bg.create_many("echo", [{"n": n} for n in range(7)], chunk_size=3, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: all(status_of(bg, u) == TaskStatus.SUCCESS for u in urns), what="every task succeeded")
        wait_for(lambda: sum(map(len, callbacks.seen.values())) == 14, what="two callbacks a task")
    for n, urn in enumerate(urns):
        task = bg.get(urn)
        assert task is not None and task.result == {"echo": {"n": n}} and task.date_completed is not None
        assert callbacks.seen[parse_task_id(urn)] == ["processing", "success"]


def test_a_failure_or_retry_in_a_chunk_does_not_stop_the_rest(make_component: Any, worker: Any) -> None:
    callbacks = _Callbacks()
    bg = make_component()
    bg.register_handler("counted", H, "counted", state_change_callback=callbacks)
    payloads = [{"key": "ok1"}, {"key": "flaky", "fail_times": 1}, {"key": "ok2"},
                {"key": "broken", "fail_times": 9}, {"key": "ok3"}]
    urns = bg.create_many("counted", payloads, chunk_size=5, retry_count=1, retry_interval=50, retain_for=-1)
    ok1, flaky, ok2, broken, ok3 = urns
    with worker(bg.app):
        wait_for(lambda: status_of(bg, broken) == TaskStatus.FAILED, what="the broken task failed after its retry")
        wait_for(lambda: all(status_of(bg, u) == TaskStatus.SUCCESS for u in (ok1, flaky, ok2, ok3)),
                 what="the others succeeded")
        wait_for(lambda: len(callbacks.seen.get(parse_task_id(broken), [])) == 4, what="the broken task's callbacks")
    assert handlers.runs == Counter({"ok1": 1, "ok2": 1, "ok3": 1, "flaky": 2, "broken": 2})
    assert callbacks.seen[parse_task_id(flaky)][:3] == ["processing", "pending", "processing"]
    assert callbacks.seen[parse_task_id(broken)] == ["processing", "pending", "processing", "failed"]
    task = bg.get(broken)
    assert task is not None and task.error is not None and task.error.name == "RuntimeError"


def test_a_cancelled_task_of_a_chunk_never_runs(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("counted", H, "counted")
    urns = bg.create_many("counted", [{"key": k} for k in ("a", "b", "c")], chunk_size=3, retain_for=-1)
    assert bg.cancel(urns[1]) is True
    assert bg.remove(urns[2]) is True
    # A later message, run after the whole chunk by a worker of one: then nothing of it is still to come.
    bg.register_handler("echo", H, "echo")
    sentinel = bg.create("echo", {"n": 0}, retain_for=-1)
    with worker(bg.app, concurrency=1):
        wait_for(lambda: status_of(bg, urns[0]) == TaskStatus.SUCCESS)
        wait_for(lambda: status_of(bg, sentinel) == TaskStatus.SUCCESS, what="the chunk fully taken")
    assert status_of(bg, urns[1]) == TaskStatus.CANCELLED
    assert bg.get(urns[2]) is None
    assert handlers.runs == Counter({"a": 1})


def test_a_redelivered_chunk_runs_nothing_twice(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("counted", H, "counted")
    urns = bg.create_many("counted", [{"key": f"d{n}"} for n in range(4)], chunk_size=4, retain_for=-1)
    items = [[parse_task_id(u), 0] for u in urns]
    # The same chunk twice more, as a broker redelivery (or a second publish) would bring it.
    for _ in range(2):
        bg.runner.many_task.apply_async(args=(items,), kwargs={"task_type": "counted"}, queue=bg.settings.queue)
    sentinel = bg.create("counted", {"key": "after"}, retain_for=-1)
    with worker(bg.app, concurrency=1):
        wait_for(lambda: status_of(bg, sentinel) == TaskStatus.SUCCESS, what="the later message drained")
    assert all(status_of(bg, u) == TaskStatus.SUCCESS for u in urns)
    assert handlers.runs == Counter({"d0": 1, "d1": 1, "d2": 1, "d3": 1, "after": 1})


def test_revoking_a_chunk_message_cancels_its_tasks(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("counted", H, "counted")
    # Records from create_many whose own wake-ups are taken off the queue: the chunk message
    # below, under an id the test knows, stands in for the one create_many would send.
    urns = bg.create_many("counted", [{"key": f"r{n}"} for n in range(3)], chunk_size=3, retain_for=-1)
    _queued(bg.app, bg.settings.queue)
    chunk_id = "chunk-to-revoke"
    with worker(bg.app):
        bg.app.control.revoke(chunk_id)
        wait_for(lambda: any(chunk_id in ids for ids in (bg.app.control.inspect(timeout=1).revoked() or {}).values()),
                 what="revoke seen by the worker")
        items = [[parse_task_id(u), 0] for u in urns]
        bg.runner.many_task.apply_async(args=(items,), kwargs={"task_type": "counted"}, task_id=chunk_id,
                                         queue=bg.settings.queue)
        wait_for(lambda: all(status_of(bg, u) == TaskStatus.CANCELLED for u in urns), what="every task cancelled")
    assert sum(handlers.runs.values()) == 0


def test_a_chunk_member_revoked_by_its_own_id_is_skipped(make_component: Any, worker: Any) -> None:
    """The worker's sweeper records the revoke of a member's id as a cancel, so the member is
    skipped when its chunk runs, though no message of its own ever carries that id."""
    bg = make_component()
    bg.register_handler("counted", H, "counted")
    urns = bg.create_many("counted", [{"key": f"m{n}"} for n in range(3)], chunk_size=3, retain_for=-1)
    [(_, (items,), kwargs)] = _queued(bg.app, bg.settings.queue)  # held back until the revoke is in
    with worker(bg.app):
        revoke_when_listening(bg.app, parse_task_id(urns[1]))
        wait_for(lambda: status_of(bg, urns[1]) == TaskStatus.CANCELLED, what="the revoked member cancelled")
        bg.runner.many_task.apply_async(args=(items,), kwargs=kwargs, queue=bg.settings.queue)
        wait_for(lambda: status_of(bg, urns[2]) == TaskStatus.SUCCESS, what="the chunk to run")
    assert [status_of(bg, u) for u in urns] == [TaskStatus.SUCCESS, TaskStatus.CANCELLED, TaskStatus.SUCCESS]
    assert handlers.runs == Counter({"m0": 1, "m2": 1})


@pytest.mark.parametrize(
    ("chunk_size", "rule"),
    [(0, "int >= 1"), (-3, "int >= 1"), (True, "int >= 1"), ("10", "int >= 1"), (2.0, "int >= 1"),
     (None, "int >= 1"), (1001, "at most 1000")],
)
def test_a_bad_chunk_size_writes_nothing(make_component: Any, queue_name: str, chunk_size: Any, rule: str) -> None:
    bg = make_component()
    with pytest.raises(TaskValidationError) as info:
        bg.create_many("echo", [1, 2, 3], chunk_size=chunk_size)
    assert info.value.field == "chunk_size" and rule in str(info.value)
    assert bg.query().entities == []
    assert _queued(bg.app, queue_name) == []


def test_chunks_run_in_place_when_celery_is_eager(make_component: Any, celery_app_factory: Any) -> None:
    bg = make_component(celery_app_factory(task_always_eager=True))
    bg.register_handler("echo", H, "echo")
    published: list[str] = []

    def record(sender: Any = None, **_: Any) -> None:
        published.append(str(sender))

    signals.before_task_publish.connect(record, weak=False)
    try:
        urns = bg.create_many("echo", [{"n": n} for n in range(5)], chunk_size=2, retain_for=-1)
    finally:
        signals.before_task_publish.disconnect(record)
    assert published == []  # eager: nothing went to the broker
    assert [status_of(bg, u) for u in urns] == [TaskStatus.SUCCESS] * 5
