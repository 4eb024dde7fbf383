"""``celery bgtask ...`` through click's test runner, against a real worker and PostgreSQL."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner, Result

from celery_bgtask import BackgroundTaskComponent, TaskContext, TaskSchedulerComponent, TaskStatus
from celery_bgtask.cli import bgtask
from celery_bgtask.ids import parse_task_id
from tests.helpers import status_of, wait_for
from tests.integration import scheduled_jobs

pytestmark = pytest.mark.backends("postgres")


def run(bg: BackgroundTaskComponent, *args: str) -> Result:
    """What ``celery -A proj bgtask ARGS`` does: celery's CLI hands the group a context with ``.app``."""
    return CliRunner().invoke(bgtask, list(args), obj=SimpleNamespace(app=bg.app), catch_exceptions=False)


def _count_to(bg: BackgroundTaskComponent) -> None:
    @bg.definition(id="countTo", title="Count to n", retain_for=-1)
    def count_to(ctx: TaskContext[dict[str, Any]]) -> Any:
        at = ctx.input.get("at", 0) + 1
        if at >= ctx.input["n"]:
            return ctx.response.done({"counted": at})
        return ctx.response.continue_({"at": at})

    @bg.definition(id="giveUp", title="Fails", retain_for=-1)
    def give_up(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.error(ValueError("no"))


def test_list_show_and_json_page_with_the_cursor(make_component: Any, worker: Any) -> None:
    bg = make_component(default_retain_for=-1)
    bg.register_handler("echo", "tests.integration.handlers", "echo")
    urns = [bg.create("echo", {"n": i}) for i in range(3)]
    with worker(bg.app):
        for urn in urns:
            wait_for(lambda u=urn: status_of(bg, u) == TaskStatus.SUCCESS, what="echo ran")

    first = run(bg, "list", "--type", "echo", "--limit", "2")
    assert first.exit_code == 0, first.output
    bare = [parse_task_id(u) for u in urns]
    assert bare[0] in first.output and bare[1] in first.output and bare[2] not in first.output
    cursor = first.output.split("next cursor: ")[1].split()[0]

    second = run(bg, "list", "--type", "echo", "--limit", "2", "--cursor", cursor, "--json")
    assert second.exit_code == 0
    page = json.loads(second.output)
    assert [t["id"] for t in page] == [bare[2]]
    assert page[0]["status"] == "success" and page[0]["result"] == {"echo": {"n": 2}}
    assert set(page[0]) >= {"id", "type", "threadId", "dateCreated", "dateModified", "status", "payload"}

    shown = run(bg, "show", urns[0], "--json")
    assert shown.exit_code == 0 and json.loads(shown.output)["payload"] == {"n": 0}
    table = run(bg, "show", bare[0])
    assert table.exit_code == 0 and "success" in table.output and "dateCreated" in table.output


def test_cancel_retry_remove_and_their_exit_codes(make_component: Any, worker: Any) -> None:
    bg = make_component(default_retain_for=-1)
    bg.register_handler("boom", "tests.integration.handlers", "boom")
    bg.register_handler("echo", "tests.integration.handlers", "echo")
    waiting = bg.create("echo", {})  # no worker yet: it stays pending
    assert run(bg, "cancel", waiting).exit_code == 0
    assert status_of(bg, waiting) == TaskStatus.CANCELLED
    again = run(bg, "cancel", waiting)
    assert again.exit_code == 1 and "nothing to do" in again.output
    failed = bg.create("boom", {})
    with worker(bg.app):
        wait_for(lambda: status_of(bg, failed) == TaskStatus.FAILED, what="boom failed")
        before = bg.get(failed)
        assert run(bg, "retry", failed).exit_code == 0
        assert status_of(bg, failed) in (TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.FAILED)
        wait_for(lambda: (t := bg.get(failed)) is not None and t.status == TaskStatus.FAILED
                 and before is not None and t.date_modified > before.date_modified, what="the retry ran and failed")
    assert run(bg, "remove", waiting).exit_code == 0
    assert bg.get(waiting) is None


def test_definitions_trigger_and_watch_to_the_end(make_component: Any, worker: Any) -> None:
    bg = make_component()
    _count_to(bg)
    listed = run(bg, "definitions", "--json")
    assert [d["id"] for d in json.loads(listed.output)] == ["countTo", "giveUp"]

    triggered = run(bg, "trigger", "countTo", "--input", '{"n": 3}')
    assert triggered.exit_code == 0
    urn = triggered.output.strip()
    with worker(bg.app):
        watched = run(bg, "watch", urn, "--interval", "0.05")
        assert watched.exit_code == 0, watched.output
        assert "success: done" in watched.output and "iteration" in watched.output
        finished = bg.get(urn)
        assert finished is not None and finished.result == {"counted": 3}

        failing = run(bg, "trigger", "giveUp", "--json")
        urn = json.loads(failing.output)["id"]
        watched = run(bg, "watch", urn, "--interval", "0.05", "--json")
        assert watched.exit_code == 1
        assert json.loads(watched.output.strip().splitlines()[-1])["status"] == "failed"


def test_stats_counts_by_type_and_status(make_component: Any, worker: Any) -> None:
    bg = make_component(default_retain_for=-1)
    bg.register_handler("echo", "tests.integration.handlers", "echo")
    bg.register_handler("boom", "tests.integration.handlers", "boom")
    done = [bg.create("echo", {}) for _ in range(2)]
    broke = bg.create("boom", {})
    with worker(bg.app):
        for urn in [*done, broke]:
            wait_for(lambda u=urn: status_of(bg, u) in (TaskStatus.SUCCESS, TaskStatus.FAILED), what="finished")
    later = bg.create("echo", {})  # the worker has stopped: it stays pending
    out = run(bg, "stats", "--json")
    assert out.exit_code == 0
    stats = json.loads(out.output)
    assert stats["counts"]["echo"] == {"pending": 1, "processing": 0, "success": 2, "failed": 0, "cancelled": 0}
    assert stats["counts"]["boom"]["failed"] == 1
    assert set(stats["oldestPendingSeconds"]) == {"echo"} and stats["oldestPendingSeconds"]["echo"] >= 0
    assert later
    table = run(bg, "stats")
    assert table.exit_code == 0 and "oldest pending" in table.output and "echo" in table.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["show", "f" * 32], "no such record"),
        (["show", "not-an-id"], "task_id"),
        (["watch", "f" * 32], "no such record"),
        (["cancel", "f" * 32], "no such record"),
        (["list", "--status", "sleeping"], "status"),
        (["list", "--sort", "colour"], "sort"),
        (["list", "--limit", "ten"], "--limit"),
        (["trigger", "countTo", "--input", "{nope"], "--input: not valid JSON"),
        (["trigger", "noSuchDefinition"], "noSuchDefinition"),
        (["pause", "nightly"], "no such schedule"),
        (["resume", "nightly"], "no such schedule"),
        (["dashboard"], "dashboard is not built"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(make_component: Any, args: list[str], says: str) -> None:
    bg = make_component()
    _count_to(bg)
    result = CliRunner().invoke(bgtask, args, obj=SimpleNamespace(app=bg.app))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], result.output


def test_schedules_pause_and_resume(make_component: Any) -> None:
    bg = make_component()
    sched = TaskSchedulerComponent(bg.app)
    sched.add_task("nightly", [{"intervalHours": 24}], scheduled_jobs.nightly)
    sched.add_task("weekdays", [{"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}], scheduled_jobs.nightly)
    listed = run(bg, "schedules")
    assert listed.exit_code == 0 and "24h" in listed.output and "cron '0 9 * * 1-5' Europe/Berlin" in listed.output
    paused = run(bg, "pause", "nightly")
    assert paused.exit_code == 0 and "pause: done" in paused.output
    info = json.loads(run(bg, "schedules", "--json").output)
    assert info["tasks"]["nightly"][0]["paused"] is True and info["tasks"]["weekdays"][0].get("paused") is not True
    assert "yes" in run(bg, "schedules").output
    resumed = run(bg, "resume", "nightly")
    assert resumed.exit_code == 0 and "resume: done" in resumed.output
    assert sched.tasks_info().tasks["nightly"][0].paused is not True


def test_migrate_and_cleanup(make_component: Any) -> None:
    bg = make_component(default_retain_for=0)
    assert run(bg, "migrate").exit_code == 0
    out = run(bg, "cleanup")
    assert out.exit_code == 0 and "removed 0 expired record(s)" in out.output
