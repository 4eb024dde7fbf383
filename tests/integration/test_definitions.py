"""Task definitions on a real worker, on every backend: iterations, hooks, abort, time budget."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from celery_bgtask import (
    BackgroundTask,
    DefinitionInfo,
    HandlerNotFoundError,
    TaskContext,
    TaskStatus,
    TaskValidationError,
)
from celery_bgtask.ids import parse_task_id
from tests.helpers import claim, wait_for, write


class Hooks:
    """Records every hook and state-change call, in order, with the status it saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def hook(self, name: str) -> Any:
        def record(task: BackgroundTask[Any, Any]) -> None:
            with self.lock:
                self.calls.append((name, task.status.value))

        return record

    def all(self) -> dict[str, Any]:
        return {name: self.hook(name) for name in ("on_done", "on_error", "on_abort", "on_max_iterations")} | {
            "state_change_callback": self.hook("state")
        }

    def names(self) -> list[str]:
        with self.lock:
            return [n for n, _ in self.calls]


class SyncInput(BaseModel):
    offset: int = 0
    limit: int = 10


def _task(bg: Any, urn: str) -> BackgroundTask[Any, Any]:
    task = bg.get(urn)
    assert task is not None
    return task


def _finished(bg: Any, urn: str) -> bool:
    task = bg.get(urn)
    return task is not None and task.status.is_terminal


def test_multi_iteration_run_merges_input_and_fires_each_hook_once(make_component: Any, worker: Any) -> None:
    hooks = Hooks()
    seen: list[tuple[int, int, int]] = []
    bg = make_component()

    @bg.definition(id="syncArticles", title="Sync Articles", input_model=SyncInput, retain_for=-1, **hooks.all())
    def sync(ctx: TaskContext[SyncInput]) -> Any:
        seen.append((ctx.iteration, ctx.input.offset, ctx.input.limit))
        if ctx.input.offset >= 30:
            return ctx.response.done({"synced": ctx.input.offset})
        return ctx.response.continue_({"offset": ctx.input.offset + ctx.input.limit})

    urn = bg.trigger("syncArticles", {"offset": 0})
    with worker(bg.app):
        wait_for(lambda: _finished(bg, urn), what="the run to finish")
        wait_for(lambda: "on_done" in hooks.names(), what="on_done")
    task = _task(bg, urn)
    assert task.status is TaskStatus.SUCCESS
    assert task.result == {"synced": 30}
    assert task.payload == {"offset": 30, "limit": 10}  # the merged input was committed
    assert task.model_extra is not None and task.model_extra["iterations"] == 4
    assert seen == [(1, 0, 10), (2, 10, 10), (3, 20, 10), (4, 30, 10)]
    # processing once (not once per iteration), then success, then on_done
    assert hooks.calls == [("state", "processing"), ("state", "success"), ("on_done", "success")]


def test_continue_with_wait_and_a_plain_return(make_component: Any, worker: Any) -> None:
    bg = make_component()

    @bg.definition(id="waits", max_iterations=5, retain_for=-1)
    def waits(ctx: TaskContext[dict[str, Any]]) -> Any:
        if ctx.iteration < 3:
            return ctx.response.continue_({"n": ctx.input.get("n", 0) + 1}, wait=timedelta(milliseconds=100))
        return {"n": ctx.input["n"], "iteration": ctx.iteration}  # a plain value is done(value)

    urn = bg.trigger("waits")
    with worker(bg.app):
        wait_for(lambda: _finished(bg, urn), what="the run to finish")
    task = _task(bg, urn)
    assert task.status is TaskStatus.SUCCESS
    assert task.result == {"n": 2, "iteration": 3}


def test_max_iterations_runs_on_max_iterations_then_fails_with_on_error(make_component: Any, worker: Any) -> None:
    hooks = Hooks()
    runs: list[int] = []
    bg = make_component()

    @bg.definition(id="endless", max_iterations=3, retain_for=-1, **hooks.all())
    def endless(ctx: TaskContext[dict[str, Any]]) -> Any:
        runs.append(ctx.iteration)
        return ctx.response.continue_({"i": ctx.iteration})

    urn = bg.trigger("endless", {})
    with worker(bg.app):
        wait_for(lambda: _finished(bg, urn), what="the run to end")
        wait_for(lambda: "on_error" in hooks.names(), what="on_error")
    task = _task(bg, urn)
    assert task.status is TaskStatus.FAILED
    assert task.error is not None and task.error.name == "MaxIterationsExceeded"
    assert "max_iterations=3" in task.error.message
    assert runs == [1, 2, 3]
    assert task.payload == {"i": 3}
    assert hooks.calls == [
        ("state", "processing"), ("state", "failed"), ("on_max_iterations", "failed"), ("on_error", "failed"),
    ]


def test_retry_of_a_max_iterations_failure_resumes_with_a_fresh_budget(make_component: Any, worker: Any) -> None:
    bg = make_component()

    @bg.definition(id="bounded", max_iterations=2, retain_for=-1)
    def bounded(ctx: TaskContext[dict[str, Any]]) -> Any:
        step = ctx.input.get("step", 0) + 1
        if step >= 3:
            return ctx.response.done({"steps": step})
        return ctx.response.continue_({"step": step})

    urn = bg.trigger("bounded", {})
    with worker(bg.app):
        wait_for(lambda: _finished(bg, urn), what="the first run to end")
        first = _task(bg, urn)
        assert first.status is TaskStatus.FAILED and first.payload == {"step": 2}
        assert bg.retry(urn) is True
        wait_for(lambda: _finished(bg, urn), what="the retried run to end")
    task = _task(bg, urn)
    assert task.status is TaskStatus.SUCCESS, task.error
    assert task.result == {"steps": 3}
    assert getattr(task, "iterations", None) == 1


@pytest.mark.parametrize("how", ["raise", "error"])
def test_a_run_that_raises_or_answers_error_fails_and_fires_on_error(
    how: str, make_component: Any, worker: Any
) -> None:
    hooks = Hooks()
    bg = make_component()

    @bg.definition(id="fails", retain_for=-1, **hooks.all())
    def fails(ctx: TaskContext[dict[str, Any]]) -> Any:
        if how == "raise":
            raise ValueError("remote said no")
        return ctx.response.error(ValueError("remote said no"))

    urn = bg.trigger("fails")
    with worker(bg.app):
        wait_for(lambda: _finished(bg, urn), what="the run to fail")
        wait_for(lambda: "on_error" in hooks.names(), what="on_error")
    task = _task(bg, urn)
    assert task.status is TaskStatus.FAILED
    assert task.error is not None and (task.error.name, task.error.message) == ("ValueError", "remote said no")
    assert hooks.calls == [("state", "processing"), ("state", "failed"), ("on_error", "failed")]


def test_a_hook_that_raises_never_changes_the_outcome(make_component: Any, worker: Any) -> None:
    fired = threading.Event()
    bg = make_component()

    def bad_hook(task: BackgroundTask[Any, Any]) -> None:
        fired.set()
        raise RuntimeError("hook bug")

    @bg.definition(id="hooked", retain_for=-1, on_done=bad_hook)
    def hooked(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done("fine")

    urn = bg.trigger("hooked")
    with worker(bg.app):
        wait_for(lambda: _finished(bg, urn), what="the run to finish")
        wait_for(fired.is_set, what="the hook")
    task = _task(bg, urn)
    assert (task.status, task.result) == (TaskStatus.SUCCESS, "fine")


def test_invalid_input_is_rejected_listing_each_field_and_nothing_is_written(make_component: Any) -> None:
    bg = make_component()
    before: list[Any] = []

    @bg.definition(id="typed", input_model=SyncInput, on_before_trigger=before.append)
    def typed(ctx: TaskContext[SyncInput]) -> Any:
        return ctx.response.done()

    @bg.definition(id="plain", on_before_trigger=before.append)
    def plain(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    with pytest.raises(TaskValidationError) as err:
        bg.trigger("typed", {"offset": "many", "limit": [1]})
    assert "offset" in str(err.value) and "limit" in str(err.value)
    assert err.value.field == "input"
    with pytest.raises(TaskValidationError, match="delay"):
        bg.trigger("typed", {}, delay="soon")  # type: ignore[arg-type]
    with pytest.raises(TaskValidationError, match="retain_for"):
        bg.trigger("typed", {}, retain_for="1d")  # type: ignore[arg-type]
    with pytest.raises(TaskValidationError, match="input: must be JSON-serialisable"):
        bg.trigger("plain", {"when": object()})
    with pytest.raises(HandlerNotFoundError):
        bg.trigger("noSuchDefinition", {})
    assert before == []  # on_before_trigger never ran for rejected input
    assert bg.query().entities == []


def test_on_before_trigger_blocks_the_trigger_with_its_own_exception(make_component: Any) -> None:
    class AlreadySyncing(Exception):
        pass

    bg = make_component()
    seen: list[Any] = []

    def guard(value: SyncInput) -> None:
        seen.append(value)
        if value.offset == 0:
            raise AlreadySyncing("a sync is running")

    @bg.definition(id="guarded", input_model=SyncInput, on_before_trigger=guard)
    def guarded(ctx: TaskContext[SyncInput]) -> Any:
        return ctx.response.done()

    with pytest.raises(AlreadySyncing, match="a sync is running"):
        bg.trigger("guarded", {"offset": 0})
    assert bg.query().entities == []
    urn = bg.trigger("guarded", SyncInput(offset=5))
    assert [s.offset for s in seen] == [0, 5] and isinstance(seen[0], SyncInput)
    assert _task(bg, urn).payload == {"offset": 5, "limit": 10}


def test_abort_of_a_running_task_from_another_component(make_component: Any, worker: Any) -> None:
    hooks = Hooks()
    started = threading.Event()
    bg = make_component()

    @bg.definition(id="patient", retain_for=-1, **hooks.all())
    def patient(ctx: TaskContext[dict[str, Any]]) -> Any:
        started.set()
        deadline = time.monotonic() + 30
        while not ctx.runtime.is_aborted():
            if time.monotonic() > deadline:
                return ctx.response.error("never aborted")
            time.sleep(0.01)
        return ctx.response.aborted()

    urn = bg.trigger("patient")
    other = make_component()  # its own app and engine: the flag travels through the database only
    with worker(bg.app):
        wait_for(started.is_set, what="the run to start")
        assert other.abort(urn, "user pressed stop") is True
        wait_for(lambda: _finished(bg, urn), what="the run to stop")
        wait_for(lambda: "on_abort" in hooks.names(), what="on_abort")
    task = _task(bg, urn)
    assert task.status is TaskStatus.CANCELLED and task.date_cancelled is not None
    assert task.error is not None and task.error.message == "user pressed stop"
    assert hooks.calls == [("state", "processing"), ("state", "cancelled"), ("on_abort", "cancelled")]
    assert other.abort(urn) is False  # finished: a no-op


def test_abort_takes_effect_at_the_iteration_boundary(make_component: Any, worker: Any) -> None:
    hooks = Hooks()
    in_second = threading.Event()
    release = threading.Event()
    bg = make_component()

    @bg.definition(id="stepper", retain_for=-1, **hooks.all())
    def stepper(ctx: TaskContext[dict[str, Any]]) -> Any:
        if ctx.iteration == 2:
            in_second.set()
            release.wait(30)
        return ctx.response.continue_({"i": ctx.iteration})  # never looks at is_aborted()

    urn = bg.trigger("stepper")
    with worker(bg.app):
        wait_for(in_second.is_set, what="the second iteration")
        assert bg.abort(urn) is True
        release.set()
        wait_for(lambda: _finished(bg, urn), what="cancelled at the boundary")
        wait_for(lambda: "on_abort" in hooks.names(), what="on_abort")
    task = _task(bg, urn)
    assert task.status is TaskStatus.CANCELLED
    assert task.model_extra is not None and task.model_extra["iterations"] == 2
    assert hooks.names() == ["state", "state", "on_abort"]


def test_abort_of_a_pending_task_cancels_it_at_once(make_component: Any, worker: Any) -> None:
    hooks = Hooks()
    ran: list[int] = []
    bg = make_component()

    @bg.definition(id="later", retain_for=-1, **hooks.all())
    def later(ctx: TaskContext[dict[str, Any]]) -> Any:
        ran.append(ctx.iteration)
        return ctx.response.done()

    urn = bg.trigger("later", delay=3600)
    assert _task(bg, urn).status is TaskStatus.PENDING
    assert bg.abort(urn) is True
    task = _task(bg, urn)
    assert task.status is TaskStatus.CANCELLED
    assert hooks.calls == [("state", "cancelled"), ("on_abort", "cancelled")]  # in this process, once
    assert bg.abort(urn) is False
    soon = bg.trigger("later", delay=0.2)
    assert _task(bg, soon).status is TaskStatus.PENDING
    with worker(bg.app):
        wait_for(lambda: _finished(bg, soon), what="the delayed run, published by the sweeper when due")
    assert _task(bg, soon).status is TaskStatus.SUCCESS
    assert ran == [1]  # the aborted task never ran


def test_is_close_to_timeout_turns_true_near_the_soft_time_limit(make_component: Any, worker: Any) -> None:
    bg = make_component()

    @bg.definition(id="budgeted", soft_time_limit=1, retain_for=-1)
    def budgeted(ctx: TaskContext[dict[str, Any]]) -> Any:
        at_start = ctx.runtime.is_close_to_timeout()
        remaining_at_start = ctx.runtime.remaining_seconds()
        deadline = time.monotonic() + 30
        while not ctx.runtime.is_close_to_timeout() and time.monotonic() < deadline:
            time.sleep(0.005)
        return ctx.response.done({
            "at_start": at_start, "remaining_at_start": remaining_at_start,
            "remaining": ctx.runtime.remaining_seconds(),
        })

    urn = bg.trigger("budgeted")
    with worker(bg.app):
        wait_for(lambda: _finished(bg, urn), what="the run to finish")
    result = _task(bg, urn).result
    # The budget is the definition's 1 s (how much of it is left at start depends on the machine).
    assert result["at_start"] is False and 0 < result["remaining_at_start"] <= 1
    assert result["remaining"] <= 0.1  # the default margin: 10% of the limit


def test_a_soft_time_limit_annotated_on_the_run_task_is_the_definitions_budget(
    make_component: Any, celery_app_factory: Any, worker: Any
) -> None:
    app = celery_app_factory(task_annotations={"celery_bgtask.run": {"soft_time_limit": 2}})
    bg = make_component(app)

    @bg.definition(id="annotated", retain_for=-1)
    def annotated(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done({"remaining": ctx.runtime.remaining_seconds()})

    urn = bg.trigger("annotated")
    with worker(bg.app):
        wait_for(lambda: _finished(bg, urn), what="the run to finish")
    remaining = _task(bg, urn).result["remaining"]
    assert remaining is not None and 0 < remaining <= 2  # Celery enforces 2 s on this run


def test_create_and_create_many_treat_a_definitions_input_as_trigger_does(make_component: Any) -> None:
    """A definition's id given to ``create``/``create_many`` gets the same validation,
    retention and ``on_before_trigger`` as ``trigger``: bad input raises and writes nothing."""

    class Refused(Exception):
        pass

    bg = make_component(default_retain_for=7)
    seen: list[SyncInput] = []

    def guard(value: SyncInput) -> None:
        if value.offset < 0:
            raise Refused("negative offset")
        seen.append(value)

    @bg.definition(id="typed", input_model=SyncInput, retain_for=60_000, on_before_trigger=guard)
    def typed(ctx: TaskContext[SyncInput]) -> Any:
        return ctx.response.done()

    with pytest.raises(TaskValidationError) as err:
        bg.create("typed", {"offset": "many"})
    assert err.value.field == "payload" and "offset" in err.value.rule
    with pytest.raises(TaskValidationError) as err:
        bg.create_many("typed", [{"offset": 1}, {"limit": [2]}])
    assert err.value.field == "payloads[1].payload" and "limit" in err.value.rule
    with pytest.raises(Refused):
        bg.create_many("typed", [{"offset": 1}, {"offset": -1}])
    assert bg.query().entities == []
    assert [s.offset for s in seen] == [1]  # the valid first item of the refused batch; nothing written

    seen.clear()
    one = bg.create("typed", {"offset": 3})
    many = bg.create_many("typed", [{"offset": 4}, SyncInput(offset=5, limit=1)], retain_for=-1)
    assert [s.offset for s in seen] == [3, 4, 5]
    assert _task(bg, one).payload == {"offset": 3, "limit": 10}
    assert [_task(bg, urn).payload for urn in many] == [{"offset": 4, "limit": 10}, {"offset": 5, "limit": 1}]
    assert bg.store.get(parse_task_id(one)).retain_for == 60_000  # the definition's, not the default
    assert bg.store.get(parse_task_id(many[0])).retain_for == -1  # the call's wins
    assert len(bg.query().entities) == 3


def test_retain_for_trigger_over_definition_over_component_default(make_component: Any) -> None:
    bg = make_component(default_retain_for=7)

    @bg.definition(id="kept", retain_for=timedelta(hours=1))
    def kept(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    @bg.definition(id="plain")
    def plain(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    def retain(urn: str) -> int:
        row = bg.store.get(parse_task_id(urn))
        return int(row.retain_for)

    assert retain(bg.trigger("kept", retain_for=-1)) == -1
    assert retain(bg.trigger("kept")) == 3_600_000
    assert retain(bg.trigger("plain")) == 7


def test_definitions_are_listed_and_do_not_clash_with_handlers(make_component: Any) -> None:
    bg = make_component()

    @bg.definition(id="syncArticles", title="Sync Articles", description="Syncs articles.")
    def sync(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    @bg.definition(id="internal", title="Internal", private=True)
    def internal(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    assert bg.definitions() == [
        DefinitionInfo(id="syncArticles", title="Sync Articles", description="Syncs articles.", private=False),
        DefinitionInfo(id="internal", title="Internal", description=None, private=True),
    ]
    assert [d.id for d in bg.definitions(include_private=False)] == ["syncArticles"]
    with pytest.raises(TaskValidationError, match="task definition"):
        bg.register_handler("syncArticles", "tests.integration.handlers", "echo")
    bg.register_handler("echo", "tests.integration.handlers", "echo")
    with pytest.raises(TaskValidationError, match="handler"):
        bg.definition(id="echo")(sync)
    with pytest.raises(TaskValidationError, match="id"):
        bg.definition(id="")(sync)
    with pytest.raises(TaskValidationError, match="max_iterations"):
        bg.definition(id="x", max_iterations=0)(sync)
    with pytest.raises(TaskValidationError, match="soft_time_limit"):
        bg.definition(id="x", soft_time_limit=-1)(sync)
    with pytest.raises(TaskValidationError, match="on_done"):
        bg.definition(id="x", on_done="notify")(sync)  # type: ignore[arg-type]


def test_a_lost_iteration_resumes_from_the_committed_input_and_counts(make_component: Any, worker: Any) -> None:
    """The sweeper's lease recovery, on every backend: a claimed iteration whose worker vanished."""
    from celery_bgtask.celery.sweeper import Sweeper
    from celery_bgtask.timeutil import now_ms

    hooks = Hooks()
    seen: list[tuple[int, int]] = []
    bg = make_component()

    @bg.definition(id="resumable", max_iterations=4, retain_for=-1, **hooks.all())
    def resumable(ctx: TaskContext[dict[str, Any]]) -> Any:
        seen.append((ctx.iteration, ctx.input["page"]))
        if ctx.input["page"] >= 2:
            return ctx.response.done({"page": ctx.input["page"]})
        return ctx.response.continue_({"page": ctx.input["page"] + 1})

    @bg.definition(id="doomed", max_iterations=1, retain_for=-1, **hooks.all())
    def doomed(ctx: TaskContext[dict[str, Any]]) -> Any:
        raise AssertionError("never runs: its only iteration was lost")

    urn = bg.trigger("resumable", {"page": 1}, delay=3600)
    lost = bg.trigger("doomed", {"page": 1}, delay=3600)
    now = now_ms()
    for u in (urn, lost):
        bare = parse_task_id(u)
        bg.store.apply(bare, write({"next_run_at": now}))
        # a worker claims the iteration and dies: its lease is already over
        assert claim(bg, bare, bg.store.get(bare).type, 0, now, now - 1, "gone@host") is not None
    Sweeper(bg).recover_expired(now_ms())
    task = _task(bg, urn)
    assert task.status is TaskStatus.PROCESSING and task.payload == {"page": 1}
    assert task.model_extra is not None and task.model_extra["iterations"] == 1
    failed = _task(bg, lost)
    assert failed.status is TaskStatus.FAILED and failed.error is not None
    assert failed.error.name == "MaxIterationsExceeded"
    assert [c for c in hooks.calls if c[0].startswith("on_")] == [
        ("on_max_iterations", "failed"), ("on_error", "failed"),
    ]
    with worker(bg.app):
        wait_for(lambda: _finished(bg, urn), what="the resumed run to finish")
    task = _task(bg, urn)
    assert (task.status, task.result) == (TaskStatus.SUCCESS, {"page": 2})
    assert seen == [(2, 1), (3, 2)]  # resumed at page 1 (the lost iteration counted)


def test_unregistering_a_definition_forgets_it(make_component: Any) -> None:
    bg = make_component()

    @bg.definition(id="temporary", title="Temporary")
    def temporary(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    bg.unregister_handler("temporary")
    assert bg.definitions() == []
    with pytest.raises(HandlerNotFoundError):
        bg.trigger("temporary")
    assert bg.query().entities == []
