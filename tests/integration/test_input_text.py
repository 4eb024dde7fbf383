"""Issue 14, text and JSON: NUL and lone surrogates, nesting depth, keys, abort messages, and
names that must match exactly, on each backend; a refusal is a ``TaskValidationError``
naming the field, and nothing is written. Also what held before and must keep holding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from celery_bgtask import (
    BackgroundTaskComponent,
    TaskContext,
    TaskSchedulerComponent,
    TaskStatus,
    TaskValidationError,
)
from celery_bgtask.limits import MAX_DEPTH, MAX_MESSAGE_CHARS
from tests.helpers import deep, readable, refused, status_of, wait_for
from tests.integration import scheduled_jobs

H = "tests.integration.handlers"


# -- text -----------------------------------------------------------------------------------
def test_names_must_not_end_with_a_space(bg: BackgroundTaskComponent, sched: TaskSchedulerComponent) -> None:
    refused(bg, "task_type", lambda: bg.create("abc ", {}))
    refused(bg, "task_type", lambda: bg.query(task_type="abc "))
    refused(bg, "task_id", lambda: sched.add_task("daily ", [{"intervalDays": 1}], scheduled_jobs.nightly))
    with pytest.raises(TaskValidationError, match=r"^id: must not end with a space$"):
        bg.definition(id="sync ")(lambda ctx: None)


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800", "x\udfffy"])
def test_nul_and_lone_surrogates_are_refused_everywhere_text_is_stored(bg: BackgroundTaskComponent,
                                                                        sched: TaskSchedulerComponent,
                                                                        bad: str) -> None:
    @bg.definition(id="plain")
    def plain(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    refused(bg, "task_type", lambda: bg.create(bad, {}))
    refused(bg, "payload", lambda: bg.create("x", bad))
    refused(bg, "payload", lambda: bg.create("x", {"a": [1, {"b": bad}]}))
    refused(bg, "payload", lambda: bg.create("x", {"a": [{bad: 1}]}))
    refused(bg, "payloads[1].payload", lambda: bg.create_many("x", [{}, {"k": bad}]))
    refused(bg, "input", lambda: bg.trigger("plain", {"deep": [bad]}))
    refused(bg, "task_id", lambda: sched.add_task(bad, [{"intervalDays": 1}], scheduled_jobs.nightly))
    refused(bg, "task_type", lambda: bg.query(task_type=bad))
    refused(bg, "task_id", lambda: bg.get(bad))
    urn = bg.create("x", {})
    refused(bg, "message", lambda: bg.abort(urn, bad))
    readable(bg, urn)


def test_the_path_of_a_bad_string_is_named(bg: BackgroundTaskComponent) -> None:
    error = refused(bg, "payload", lambda: bg.create("x", {"a": [0, {"b": "\x00"}]}))
    assert error.rule == "must not contain a NUL character at ['a'][1]['b']"


# -- nesting and keys -------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 255, 989, 1000, 5000])
def test_payloads_nested_too_deep_are_refused(bg: BackgroundTaskComponent, depth: int) -> None:
    @bg.definition(id="plain")
    def plain(ctx: TaskContext[dict[str, Any]]) -> Any:
        return ctx.response.done()

    error = refused(bg, "payload", lambda: bg.create("x", deep(depth)))
    assert error.rule == f"is nested more than {MAX_DEPTH} levels deep"
    refused(bg, "input", lambda: bg.trigger("plain", {"k": deep(depth)}))


def test_a_payload_at_the_depth_limit_is_stored_and_reads_back(bg: BackgroundTaskComponent) -> None:
    urn = bg.create("x", deep(MAX_DEPTH))
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.payload == deep(MAX_DEPTH)


def test_a_result_nested_too_deep_fails_the_task_and_listing_still_works(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("nested", H, "nested")
    urn = bg.create("nested", {"depth": 300}, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="the deep result to fail the task")
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.result is None and task.error is not None
    assert task.error.name == "TaskValidationError"
    assert task.error.message == f"result: is nested more than {MAX_DEPTH} levels deep"


def test_a_failure_whose_message_cannot_be_encoded_is_still_recorded(make_component: Any, worker: Any) -> None:
    bg = make_component()
    bg.register_handler("undecodable", H, "undecodable")
    urn = bg.create("undecodable", {}, retain_for=-1)
    with worker(bg.app):
        wait_for(lambda: status_of(bg, urn) == TaskStatus.FAILED, what="the failure to be recorded")
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.error is not None
    assert (task.error.name, task.error.message) == ("OSError", "cannot open caf\ufffd.txt")
    assert task.error.stack is not None and "caf\ufffd.txt" in task.error.stack


@pytest.mark.parametrize("payload", [{1: "a", "1": "b"}, {1: "a"}, {"ok": {None: 1}}, {"ok": [{2.5: 1}]}])
def test_keys_that_are_not_str_are_refused(bg: BackgroundTaskComponent, payload: Any) -> None:
    error = refused(bg, "payload", lambda: bg.create("x", payload))
    assert error.rule.startswith("keys must be str, got a key of type ")


# -- abort messages --------------------------------------------------------------------------
@pytest.mark.parametrize("message", [42, b"bytes", ["why"], {"a": 1}, "x" * (MAX_MESSAGE_CHARS + 1), "x" * 10**7])
def test_abort_messages_must_be_short_strings(bg: BackgroundTaskComponent, message: Any) -> None:
    urn = bg.create("x", {})
    refused(bg, "message", lambda: bg.abort(urn, message))
    assert status_of(bg, urn) == TaskStatus.PENDING


def test_an_abort_message_at_the_limit_is_kept(bg: BackgroundTaskComponent) -> None:
    urn = bg.create("x", {}, retain_for=-1)
    assert bg.abort(urn, "é" * MAX_MESSAGE_CHARS)
    readable(bg, urn)
    task = bg.get(urn)
    assert task is not None and task.error is not None and task.error.message == "é" * MAX_MESSAGE_CHARS


# -- what held before, and must keep holding -------------------------------------------------
def test_like_wildcards_in_a_type_match_only_that_type(bg: BackgroundTaskComponent) -> None:
    types = ["a_c", "abc", "a%c", "aXc", "a\\c", "a\\_c", "%", "_"]
    urns = {t: bg.create(t, {}) for t in types}
    for t in types:
        assert [e.id for e in bg.query(task_type=t).entities] == [urns[t].rsplit(":", 1)[1]], t


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"sort_property": "dateCreated; DROP TABLE bgtask_tasks"}, "sort_property"),
    ({"sort_property": "date_created desc, id"}, "sort_property"),
    ({"sort_property": "(select 1)"}, "sort_property"),
    ({"task_status": "pending' OR '1'='1"}, "task_status"),
    ({"task_status": "pending; DELETE FROM bgtask_tasks"}, "task_status"),
    ({"sort_direction": "asc; DROP TABLE bgtask_tasks"}, "sort_direction"),
])
def test_sql_in_sort_or_status_is_refused(bg: BackgroundTaskComponent, kwargs: dict[str, Any], field: str) -> None:
    urn = bg.create("x", {})
    refused(bg, field, lambda: bg.query(**kwargs))
    readable(bg, urn)


def test_the_payload_cap_is_exact_to_the_byte(make_component: Callable[..., BackgroundTaskComponent]) -> None:
    bg = make_component(max_payload_bytes=1000)
    bg.ensure_ready()
    fits = "é" * 499  # '"' + 998 bytes + '"': exactly 1000 bytes of JSON
    urn = bg.create("x", fits)
    readable(bg, urn)
    error = refused(bg, "payload", lambda: bg.create("x", fits + "a"))
    assert error.rule == "JSON is 1001 bytes, more than the maximum 1000"


def test_cursors_of_another_database_or_query_and_truncated_ones_are_refused(
    bg: BackgroundTaskComponent, celery_app_factory: Callable[..., Any], tmp_path: Any
) -> None:
    bg.create_many("c", [{}] * 3)
    cursor = bg.query(task_type="c", limit=1).cursor
    assert cursor is not None
    other = BackgroundTaskComponent(celery_app_factory(), database_url=f"sqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        other.create_many("c", [{}] * 3)
        with pytest.raises(TaskValidationError, match=r"^cursor: signature does not match"):
            other.query(task_type="c", limit=1, cursor=cursor)
    finally:
        other.engine.dispose()
    for bad in (cursor[:-1], cursor[: len(cursor) // 2], cursor.split(".")[0] + ".", "." + cursor.split(".")[1]):
        refused(bg, "cursor", lambda: bg.query(task_type="c", limit=1, cursor=bad))  # noqa: B023
    refused(bg, "cursor", lambda: bg.query(task_type="d", limit=1, cursor=cursor))
    again = [bg.query(task_type="c", limit=1, cursor=cursor).entities for _ in range(2)]
    assert again[0] == again[1] and len(again[0]) == 1  # the same query may read a page twice


#: Equal under MariaDB's default collation (case, accents; every astral character weighs the
#: same), and different names all the same. (A trailing space, which even binary collation
#: ignores there, is refused in names.)
LOOKALIKES = ["abc", "ABC", " abc", "äbc", "Äbc", "😀", "😁"]


def test_types_that_differ_only_in_case_accents_spaces_or_emoji_are_different_types(
    bg: BackgroundTaskComponent,
) -> None:
    urns = {t: bg.create(t, {"t": t}) for t in LOOKALIKES}
    for t in LOOKALIKES:
        assert [e.type for e in bg.query(task_type=t).entities] == [t]
        readable(bg, urns[t])


def test_schedules_whose_ids_differ_only_in_case_or_spaces_are_different_schedules(
    bg: BackgroundTaskComponent, sched: TaskSchedulerComponent
) -> None:
    for position, schedule_id in enumerate(LOOKALIKES):
        sched.add_task(schedule_id, [{"nextTriggerTime": 1000 + position}], scheduled_jobs.nightly)
    listed = sched.tasks_info().tasks
    assert {k: [t.next_trigger_time for t in v] for k, v in listed.items()} == {
        schedule_id: [1000 + position] for position, schedule_id in enumerate(LOOKALIKES)
    }
    assert sched.remove_task("ABC")
    assert set(sched.tasks_info().tasks) == set(LOOKALIKES) - {"ABC"}
